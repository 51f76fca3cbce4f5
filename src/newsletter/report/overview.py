"""`newsletter issues`: every issue in the workspace at a glance, newest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from newsletter.build.checks import errors as errors_in
from newsletter.build.output import make_build
from newsletter.config import Settings
from newsletter.deliver.backends import rehearsal_backends, uncounted_rehearsals
from newsletter.deliver.ledger_view import LedgerView
from newsletter.errors import NewsletterError
from newsletter.issue.file import load_issue
from newsletter.issue.model import ISSUE_FILE, SLUG_PATTERN
from newsletter.report.links import unsubscribe_like
from newsletter.schedule.store import get_schedule

if TYPE_CHECKING:
    from newsletter.db import Connection


@dataclass(frozen=True)
class IssueLine:
    slug: str
    subject: str | None
    date: str | None
    state: str
    recipients: int
    delivered_pct: float | None
    unique_clicks_pct: float | None
    unsubscribes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def overview(settings: Settings, conn: Connection) -> list[IssueLine]:
    folder = settings.path("issues")
    slugs = sorted(
        path.name
        for path in (folder.iterdir() if folder.is_dir() else [])
        if (path / ISSUE_FILE).is_file() and SLUG_PATTERN.match(path.name)
    )
    rehearsals = uncounted_rehearsals(settings)
    lines = [_line(settings, conn, slug, rehearsals) for slug in slugs]
    return sorted(lines, key=lambda line: (line.date or "", line.slug), reverse=True)


def _line(settings: Settings, conn: Connection, slug: str, rehearsals: list[str]) -> IssueLine:
    subject = date = None
    problem = None
    try:
        issue = load_issue(settings.issue_dir(slug) / ISSUE_FILE)
        subject, date = issue.subject, issue.date.isoformat()
    except NewsletterError as error:
        problem = f"draft, not ready: {error.what}"
    view = LedgerView(conn)
    counts = view.counts(slug, rehearsals=rehearsals)
    recipients = sum(n for state, n in counts.items() if state != "skipped")
    reached = counts.get("sent", 0) + counts.get("unknown", 0) + counts.get("failed", 0)
    if reached:
        state = _sent_state(counts, view.first_sent(slug, rehearsals))
        if rehearsal_only(view, slug):
            state = state.replace("sent on", "sent to the outbox on", 1)
    elif (planned := get_schedule(conn, slug)) is not None:
        state = f"scheduled for {planned.describe()}"
    elif problem is not None:
        state = problem
    else:
        state = _draft_state(settings, slug)
    unsubscribe = unsubscribe_like(settings.file.newsletter.unsubscribe_url)
    delivered, clickers, unsubscribes = _events(conn, slug, unsubscribe)
    sent = counts.get("sent", 0)
    return IssueLine(
        slug,
        subject,
        date,
        state,
        recipients,
        round(100 * delivered / sent, 1) if sent and delivered else None,
        round(100 * clickers / delivered, 1) if delivered else None,
        unsubscribes,
    )


def rehearsal_only(view: LedgerView, slug: str) -> bool:
    """Everything the ledger sent of the issue went to a rehearsal backend (the outbox)."""
    by_backend = view.sent_by_backend(slug)
    return bool(by_backend) and set(by_backend) <= set(rehearsal_backends())


def _sent_state(counts: dict[str, int], first: str | None) -> str:
    open_rows = counts.get("pending", 0) + counts.get("sending", 0)
    if open_rows:
        return f"sending: {counts.get('sent', 0):,} sent, {open_rows:,} to go"
    problems = [
        f"{counts[state]:,} {state}" for state in ("unknown", "failed") if counts.get(state)
    ]
    if problems:
        return "incomplete: " + ", ".join(problems)
    day = dt.datetime.fromisoformat(first).date().isoformat() if first else "?"
    return f"sent on {day}"


def _draft_state(settings: Settings, slug: str) -> str:
    try:
        found = errors_in(make_build(settings, slug).findings)
    except NewsletterError as error:
        return f"checks failing: {error.what}"
    if found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        return f"checks failing: [{found[0].code}] {found[0].message}{more}"
    return "draft"


def _events(conn: Connection, slug: str, unsubscribe: str) -> tuple[int, int, int]:
    """Delivered, clickers of anything but their unsubscribe link, readers who left."""
    delivered, clickers = conn.execute(
        "SELECT count(DISTINCT CASE WHEN event = 'delivered' THEN email_key END), "
        "count(DISTINCT CASE WHEN event = 'click' AND url NOT LIKE ? ESCAPE '\\' "
        "THEN email_key END) FROM events WHERE issue = ?",
        (unsubscribe, slug),
    ).fetchone()
    (unsubscribes,) = conn.execute(
        "SELECT count(DISTINCT email_key) FROM consent WHERE issue = ? AND action = 'unsubscribe'",
        (slug,),
    ).fetchone()
    return int(delivered), int(clickers), int(unsubscribes)
