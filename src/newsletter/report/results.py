"""One issue's results: what the ledger sent and what SendGrid's events say became of it.

Every count is one SQL aggregate over the `events` table (indexed by issue, event and
address), so a million recipients with millions of events take a few seconds and flat
memory. Unique counts are per recipient; SendGrid's repeated events were already stored
once each (by content) when they arrived.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import asdict, dataclass, field
from typing import Any

from newsletter.deliver.ledger_view import LedgerView
from newsletter.report.links import LinkMap, Story

HOURS = 72
MACHINE_OPEN_CAVEAT = (
    "machine opens are counted apart: Apple Mail Privacy Protection and some security "
    "scanners open every message they receive, whether or not anyone reads it"
)


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
    opens_unique: int = 0
    opens_machine_only: int = 0
    clicks_unique: int = 0
    clicks_total: int = 0
    stories: list[LinkClicks] = field(default_factory=list)
    other_links: list[LinkClicks] = field(default_factory=list)
    opens_per_hour: list[int] = field(default_factory=lambda: [0] * HOURS)
    clicks_per_hour: list[int] = field(default_factory=lambda: [0] * HOURS)

    def rate(self, count: int) -> float | None:
        """`count` as a percentage of delivered (None before anything was delivered)."""
        return round(100 * count / self.delivered, 1) if self.delivered else None

    @property
    def click_to_open(self) -> float | None:
        opened = self.opens_unique + self.opens_machine_only
        return round(100 * self.clicks_unique / opened, 1) if opened else None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["rates_of_delivered"] = {
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
        data["rates_of_delivered"]["unsubscribes"] = self.rate(sum(self.unsubscribes.values()))
        data["delivered_of_sent"] = (
            round(100 * self.delivered / self.sent, 1) if self.sent else None
        )
        data["click_to_open"] = self.click_to_open
        data["machine_open_caveat"] = MACHINE_OPEN_CAVEAT
        return data


def issue_results(
    conn: sqlite3.Connection, slug: str, links: LinkMap, rehearsals: list[str]
) -> IssueResults:
    view = LedgerView(conn)
    sent = view.counts(slug, rehearsals=rehearsals).get("sent", 0)
    first = view.first_sent(slug, rehearsals)
    results = IssueResults(slug, sent, first)
    _deliveries(conn, slug, results)
    _opens(conn, slug, results)
    _clicks(conn, slug, links, results)
    _unsubscribes(conn, slug, results)
    if first is not None:
        _per_hour(conn, slug, dt.datetime.fromisoformat(first), results)
    return results


def _distinct(conn: sqlite3.Connection, slug: str, event: str, extra: str = "") -> int:
    """Readers with at least one `event` (the index gives them in order: no sorting)."""
    (count,) = conn.execute(
        f"SELECT count(DISTINCT email_key) FROM events WHERE issue = ? AND event = ? {extra}",
        (slug, event),
    ).fetchone()
    return int(count)


def _deliveries(conn: sqlite3.Connection, slug: str, results: IssueResults) -> None:
    (found,) = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE issue = ?)", (slug,)
    ).fetchone()
    results.has_events = bool(found)
    results.delivered = _distinct(conn, slug, "delivered")
    results.deferred = _distinct(conn, slug, "deferred")
    results.dropped = _distinct(conn, slug, "dropped")
    results.spam_reports = _distinct(conn, slug, "spamreport")
    results.bounced_soft = _distinct(conn, slug, "bounce", "AND bounce_type = 'blocked'")
    results.bounced_hard = _distinct(
        conn, slug, "bounce", "AND coalesce(bounce_type, '') != 'blocked'"
    )


def _opens(conn: sqlite3.Connection, slug: str, results: IssueResults) -> None:
    anyone = _distinct(conn, slug, "open")
    results.opens_unique = _distinct(conn, slug, "open", "AND machine_open = 0")
    results.opens_machine_only = anyone - results.opens_unique


def _clicks(conn: sqlite3.Connection, slug: str, links: LinkMap, results: IssueResults) -> None:
    """Per story (its URLs merged), per other link, and unique clickers of anything but
    the unsubscribe link."""
    urls = [
        str(url)
        for (url,) in conn.execute(
            "SELECT DISTINCT url FROM events WHERE issue = ? AND event = 'click' "
            "AND url IS NOT NULL",
            (slug,),
        )
    ]
    stories = links.stories
    index = {story: number for number, story in enumerate(stories)}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS report_links (url TEXT PRIMARY KEY, story INT)")
    conn.execute("DELETE FROM temp.report_links")
    others: dict[str, str] = {}
    counted: list[tuple[str, int]] = []
    for url in urls:
        story = links.story(url)
        kind = links.kind(url)
        if story is not None:
            counted.append((url, index[story]))
        else:
            others[url] = kind
            if kind != "unsubscribe":
                counted.append((url, -1))
    conn.executemany("INSERT INTO temp.report_links (url, story) VALUES (?, ?)", counted)
    per_story = {
        int(story): (int(unique), int(total))
        for story, unique, total in conn.execute(
            "SELECT l.story, count(DISTINCT e.email_key), count(*) FROM events AS e "
            "JOIN temp.report_links AS l ON l.url = e.url "
            "WHERE e.issue = ? AND e.event = 'click' AND l.story >= 0 GROUP BY l.story",
            (slug,),
        )
    }
    results.stories = [
        _story_clicks(story, *per_story.get(number, (0, 0))) for number, story in enumerate(stories)
    ]
    unique, total = conn.execute(
        "SELECT count(DISTINCT e.email_key), count(*) FROM events AS e "
        "JOIN temp.report_links AS l ON l.url = e.url WHERE e.issue = ? AND e.event = 'click'",
        (slug,),
    ).fetchone()
    results.clicks_unique, results.clicks_total = int(unique), int(total)
    results.other_links = _other_clicks(conn, slug, others)
    conn.execute("DELETE FROM temp.report_links")


def _story_clicks(story: Story, unique: int, total: int) -> LinkClicks:
    return LinkClicks(story.url, "story", story.title, story.section, unique, total)


def _other_clicks(conn: sqlite3.Connection, slug: str, others: dict[str, str]) -> list[LinkClicks]:
    """Unsubscribe links (one per recipient) as one line; other links one each."""
    grouped: dict[str, list[int]] = {}
    shown: dict[str, str] = {}
    for url, kind in others.items():
        unique, total = conn.execute(
            "SELECT count(DISTINCT email_key), count(*) FROM events "
            "WHERE issue = ? AND event = 'click' AND url = ?",
            (slug, url),
        ).fetchone()
        key = "unsubscribe" if kind == "unsubscribe" else url
        shown.setdefault(key, kind)
        counts = grouped.setdefault(key, [0, 0])
        counts[0] += int(unique)
        counts[1] += int(total)
    return [
        LinkClicks(
            key if shown[key] != "unsubscribe" else "(unsubscribe links)",
            shown[key],
            None,
            None,
            unique,
            total,
        )
        for key, (unique, total) in sorted(grouped.items(), key=lambda item: -item[1][1])
    ]


def _unsubscribes(conn: sqlite3.Connection, slug: str, results: IssueResults) -> None:
    """By how: one-click, the page's button, SendGrid (its link or its group page)."""
    for method, count in conn.execute(
        "SELECT method, count(DISTINCT email_key) FROM consent "
        "WHERE issue = ? AND action = 'unsubscribe' GROUP BY method",
        (slug,),
    ):
        results.unsubscribes[str(method)] = int(count)
    (group,) = conn.execute(
        "SELECT count(DISTINCT email_key) FROM events "
        "WHERE issue = ? AND event = 'group_unsubscribe'",
        (slug,),
    ).fetchone()
    if group:
        results.unsubscribes["sendgrid group"] = int(group)
        sendgrid = results.unsubscribes.get("sendgrid", 0) - int(group)
        if sendgrid > 0:
            results.unsubscribes["sendgrid"] = sendgrid
        else:
            results.unsubscribes.pop("sendgrid", None)


def _per_hour(
    conn: sqlite3.Connection, slug: str, start: dt.datetime, results: IssueResults
) -> None:
    begin = int((start if start.tzinfo else start.replace(tzinfo=dt.UTC)).timestamp())
    for hour, opens, clicks in conn.execute(
        "SELECT (occurred - ?) / 3600, sum(event = 'open'), sum(event = 'click') FROM events "
        "WHERE issue = ? AND event IN ('open', 'click') AND occurred >= ? AND occurred < ? "
        "GROUP BY 1",
        (begin, slug, begin, begin + HOURS * 3600),
    ):
        results.opens_per_hour[int(hour)] = int(opens)
        results.clicks_per_hour[int(hour)] = int(clicks)
