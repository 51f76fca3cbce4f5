"""One issue's results: what the ledger sent and what SendGrid's events say became of it.

Every count is one SQL aggregate over the `events` table (indexed by issue, event and
address), so a million recipients with millions of events take a few seconds and flat
memory. Unique counts are per recipient; SendGrid's repeated events were already stored
once each (by content) when they arrived.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from newsletter.deliver.ledger_view import LedgerView
from newsletter.report.links import LinkMap, Story
from newsletter.schedule.store import held_until

HOURS = 72
MACHINE_OPEN_CAVEAT = (
    "machine opens are counted apart: Apple Mail Privacy Protection and some security "
    "scanners open every message they receive, whether or not anyone reads it"
)

if TYPE_CHECKING:
    from newsletter.db import Connection


@dataclass(frozen=True)
class LinkClicks:
    url: str
    kind: str  # story, unsubscribe, web version, other
    title: str | None
    section: str | None
    unique: int
    total: int


@dataclass
class IssueResults:
    issue: str
    sent: int
    first_sent: str | None
    has_events: bool = False
    delivered: int = 0
    deferred: int = 0
    bounced_hard: int = 0
    bounced_soft: int = 0
    dropped: int = 0
    spam_reports: int = 0
    unsubscribes: dict[str, int] = field(default_factory=dict)
    unsubscribed: int = 0  # readers who left, each once whatever the ways
    opens_unique: int = 0
    opens_machine_only: int = 0
    clicks_unique: int = 0
    clicks_total: int = 0
    stories: list[LinkClicks] = field(default_factory=list)
    other_links: list[LinkClicks] = field(default_factory=list)
    opens_per_hour: list[int] = field(default_factory=lambda: [0] * HOURS)
    clicks_per_hour: list[int] = field(default_factory=lambda: [0] * HOURS)

    @property
    def rates_of(self) -> str:
        """What rates are percentages of: delivered, or sent when SendGrid's delivered
        events do not cover everyone who opened or clicked (an account that posts only
        some kinds of event), so that no rate can pass 100%."""
        engaged = max(self.opens_unique + self.opens_machine_only, self.clicks_unique)
        return "delivered" if self.delivered and self.delivered >= engaged else "sent"

    def rate(self, count: int) -> float | None:
        """`count` as a percentage of `rates_of` (None before anything went out)."""
        base = self.delivered if self.rates_of == "delivered" else self.sent
        return round(100 * count / base, 1) if base else None

    @property
    def click_to_open(self) -> float | None:
        opened = self.opens_unique + self.opens_machine_only
        return round(100 * self.clicks_unique / opened, 1) if opened else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not any(self.opens_per_hour) and not any(self.clicks_per_hour):
            del data["opens_per_hour"], data["clicks_per_hour"]  # only with the page
        data["rates_of"] = self.rates_of
        data["rates"] = {
            name: self.rate(getattr(self, name))
            for name in (
                "deferred",
                "bounced_hard",
                "bounced_soft",
                "dropped",
                "spam_reports",
                "opens_unique",
                "opens_machine_only",
                "clicks_unique",
            )
        }
        data["rates"]["unsubscribes"] = self.rate(self.unsubscribed)
        data["delivered_of_sent"] = (
            round(100 * self.delivered / self.sent, 1) if self.sent else None
        )
        data["click_to_open"] = self.click_to_open
        data["machine_open_caveat"] = MACHINE_OPEN_CAVEAT
        return data


def issue_results(
    conn: Connection,
    slug: str,
    links: LinkMap,
    rehearsals: list[str],
    *,
    per_hour: bool = False,
) -> IssueResults:
    """The issue's numbers; `per_hour` adds the 72-hour series (for the page's chart)."""
    view = LedgerView(conn)
    sent = view.sent(slug, rehearsals)
    first = view.first_sent(slug, rehearsals)
    held = held_until(conn, slug)  # handed to SendGrid ahead: readers get it at send_at
    if first is not None and held is not None:
        first = max(dt.datetime.fromisoformat(first), held).isoformat()
    results = IssueResults(slug, sent, first)
    _deliveries(conn, slug, results)
    _opens(conn, slug, results)
    _clicks(conn, slug, links, results)
    _unsubscribes(conn, slug, results)
    if per_hour and first is not None:
        _per_hour(conn, slug, dt.datetime.fromisoformat(first), results)
    return results


def _distinct(conn: Connection, slug: str, event: str, extra: str = "") -> int:
    """Readers with at least one `event` (the index gives them in order: no sorting)."""
    (count,) = conn.execute(
        f"SELECT count(DISTINCT email_key) FROM events WHERE issue = ? AND event = ? {extra}",
        (slug, event),
    ).fetchone()
    return int(count)


def has_events(conn: Connection, slug: str) -> bool:
    """Whether any SendGrid event of the issue arrived."""
    (found,) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE issue = ?)", (slug,)
    ).fetchone()
    return bool(found)


def _deliveries(conn: Connection, slug: str, results: IssueResults) -> None:
    results.has_events = has_events(conn, slug)
    results.delivered = _distinct(conn, slug, "delivered")
    results.deferred = _distinct(conn, slug, "deferred")
    results.dropped = _distinct(conn, slug, "dropped")
    results.spam_reports = _distinct(conn, slug, "spamreport")
    results.bounced_soft = _distinct(conn, slug, "bounce", "AND bounce_type = 'blocked'")
    results.bounced_hard = _distinct(
        conn, slug, "bounce", "AND coalesce(bounce_type, '') != 'blocked'"
    )


def _opens(conn: Connection, slug: str, results: IssueResults) -> None:
    # One ordered pass over events_reader: a reader is a person if any open was not a
    # machine's, machine-only otherwise.
    human, machine_only = conn.execute(
        "SELECT coalesce(sum(person), 0), coalesce(sum(1 - person), 0) FROM ("
        "SELECT CASE WHEN min(machine_open) = 0 THEN 1 ELSE 0 END AS person FROM events "
        "WHERE issue = ? AND event = 'open' GROUP BY email_key) AS readers",
        (slug,),
    ).fetchone()
    results.opens_unique, results.opens_machine_only = int(human), int(machine_only)


def _clicks(conn: Connection, slug: str, links: LinkMap, results: IssueResults) -> None:
    """Per story, per other link, and the unique clickers of anything but unsubscribing.

    One ordered pass over events_link gives each URL's readers; a story reached through
    several spellings of its URL (rare) is counted exactly with one more query.
    """
    per_url = [
        (str(url), int(unique), int(total))
        for url, unique, total in conn.execute(
            "SELECT url, count(DISTINCT email_key), count(*) FROM events "
            "WHERE issue = ? AND event = 'click' AND url IS NOT NULL GROUP BY url",
            (slug,),
        )
    ]
    spellings: dict[Story, list[str]] = {}
    counts: dict[Story, tuple[int, int]] = {}
    grouped: dict[tuple[str, str], list[int]] = {}
    unsubscribe_urls: list[str] = []
    for url, unique, total in per_url:
        story = links.story(url)
        if story is not None:
            spellings.setdefault(story, []).append(url)
            before = counts.get(story, (0, 0))
            counts[story] = (before[0] + unique, before[1] + total)
            continue
        kind = links.kind(url)
        if kind == "unsubscribe":
            unsubscribe_urls.append(url)
        key = (kind, "(unsubscribe links)" if kind == "unsubscribe" else url)
        sums = grouped.setdefault(key, [0, 0])
        sums[0] += unique
        sums[1] += total
    for story, urls in spellings.items():
        if len(urls) > 1:
            counts[story] = (len(_readers_of(conn, slug, urls)), counts[story][1])
    unsubscribers = _readers_of(conn, slug, unsubscribe_urls)
    if unsubscribe_urls:  # one link per reader: their union counts people once
        grouped[("unsubscribe", "(unsubscribe links)")][0] = len(unsubscribers)
    results.stories = [_story_clicks(story, *counts.get(story, (0, 0))) for story in links.stories]
    results.other_links = [
        LinkClicks(url, kind, None, None, unique, total)
        for (kind, url), (unique, total) in sorted(grouped.items(), key=lambda i: -i[1][1])
    ]
    (anyone,) = conn.execute(
        "SELECT count(DISTINCT email_key) FROM events WHERE issue = ? AND event = 'click'",
        (slug,),
    ).fetchone()
    only_unsubscribed = _only_unsubscribed(conn, slug, unsubscribers, set(unsubscribe_urls))
    results.clicks_unique = int(anyone) - only_unsubscribed
    results.clicks_total = sum(total for url, _, total in per_url if url not in unsubscribe_urls)


def _readers_of(conn: Connection, slug: str, urls: list[str]) -> set[str]:
    """Everyone who clicked any of `urls`."""
    return {
        str(key)
        for url in urls
        for (key,) in conn.execute(
            "SELECT email_key FROM events WHERE issue = ? AND event = 'click' AND url = ?",
            (slug, url),
        )
    }


def _only_unsubscribed(
    conn: Connection, slug: str, readers: set[str], unsubscribing: set[str]
) -> int:
    """Of `readers`, those whose only clicks were on an unsubscribe link (not engagement)."""
    only = 0
    for reader in readers:
        clicked = {
            str(url)
            for (url,) in conn.execute(
                "SELECT url FROM events WHERE issue = ? AND event = 'click' AND email_key = ?",
                (slug, reader),
            )
        }
        only += clicked <= unsubscribing
    return only


def _story_clicks(story: Story, unique: int, total: int) -> LinkClicks:
    return LinkClicks(story.url, "story", story.title, story.section, unique, total)


def _unsubscribes(conn: Connection, slug: str, results: IssueResults) -> None:
    """By how (one-click, page, SendGrid, SendGrid group), from the consent records: one
    record per reader who left, so nobody counts twice whatever else arrived later."""
    for method, count in conn.execute(
        "SELECT method, count(DISTINCT email_key) FROM consent "
        "WHERE issue = ? AND action = 'unsubscribe' GROUP BY method",
        (slug,),
    ):
        results.unsubscribes[str(method)] = int(count)
    (readers,) = conn.execute(
        "SELECT count(DISTINCT email_key) FROM consent WHERE issue = ? AND action = 'unsubscribe'",
        (slug,),
    ).fetchone()
    results.unsubscribed = int(readers)


def _per_hour(conn: Connection, slug: str, start: dt.datetime, results: IssueResults) -> None:
    begin = int((start if start.tzinfo else start.replace(tzinfo=dt.UTC)).timestamp())
    for hour, opens, clicks in conn.execute(
        "SELECT (occurred - ?) / 3600, count(CASE WHEN event = 'open' THEN 1 END), "
        "count(CASE WHEN event = 'click' THEN 1 END) FROM events "
        "WHERE issue = ? AND event IN ('open', 'click') AND occurred >= ? AND occurred < ? "
        "GROUP BY 1",
        (begin, slug, begin, begin + HOURS * 3600),
    ):
        results.opens_per_hour[int(hour)] = int(opens)
        results.clicks_per_hour[int(hour)] = int(clicks)
