"""The schedules: when each issue goes out, and what is due, late or sent at a given time.

A schedule is an issue's send time (UTC, with the zone it was given in) in the workspace
database; an issue scheduled through SendGrid also has a row in `sendgrid_batches`
(see schedule.handover). `list_schedules` says, for a given `now`, which
issues are waiting, due, too late, with SendGrid or sent; the cron run
(schedule.cron) sends the due ones.

The clock is never read here: every function takes `now` (an aware datetime).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from newsletter.db import open_database, transaction, utc_now
from newsletter.deliver.ledger import Ledger
from newsletter.errors import UserError
from newsletter.schedule.failures import recorded_failures
from newsletter.schedule.send_time import UTC, SendTime, aware_utc, span, wall_clock

if TYPE_CHECKING:
    from newsletter.db import Connection

if TYPE_CHECKING:
    from newsletter.config import Settings

CANCEL_DEADLINE = dt.timedelta(minutes=10)  # SendGrid's (shared/sendgrid/README.md, batch_id)
# How long before its time an issue scheduled through SendGrid is handed over: long
# enough for a cron run every few minutes and a slow send, short enough that late edits
# to the issue still make it, and more than CANCEL_DEADLINE so it can still be cancelled.
SUBMIT_AHEAD = dt.timedelta(hours=1)
WRITABLE_FIX = "make the workspace writable by the user that runs newsletter (e.g. cron's user)"


# --------------------------------------------------------------------------- storage


def open_schedule_database(settings: Settings) -> Connection:
    """The workspace database, found writable up front (cron's user is often not the editor)."""
    try:
        conn = open_database(settings.database)
    except sqlite3.OperationalError as exc:
        raise UserError(
            f"cannot open the database ({exc})", where=str(settings.database), fix=WRITABLE_FIX
        ) from None
    try:
        with transaction(conn):
            pass  # BEGIN IMMEDIATE takes the write lock: a read-only database fails here
    except sqlite3.OperationalError as exc:
        conn.close()
        raise UserError(
            f"cannot write to the database ({exc})", where=str(settings.database), fix=WRITABLE_FIX
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn


class BatchState(StrEnum):
    """`sendgrid_batches.state`: where an issue scheduled through SendGrid stands."""

    PLANNED = "planned"  # scheduled --via-sendgrid, not handed over yet
    SUBMITTED = "submitted"  # handed over under its batch id: SendGrid holds it
    CANCELLED = "cancelled"  # cancelled at SendGrid


@dataclass(frozen=True)
class Schedule:
    issue: str
    send_at: dt.datetime  # UTC
    zone: str
    created: str
    via_sendgrid: bool = False
    batch_id: str | None = None
    batch_state: BatchState | None = None  # SendGrid only

    @property
    def local(self) -> dt.datetime:
        return self.local_time(self.send_at)

    def local_time(self, moment: dt.datetime) -> dt.datetime:
        """`moment` on the clocks of the zone the issue was scheduled in."""
        return moment.astimezone(ZoneInfo(self.zone))

    def describe(self) -> str:
        """Local time and zone: "2026-12-01 08:00 CET Europe/Berlin", "2026-12-01 08:00 UTC"."""
        return wall_clock(self.local, self.zone)

    @property
    def submitted(self) -> bool:
        return self.via_sendgrid and self.batch_state is BatchState.SUBMITTED

    @property
    def cancel_deadline(self) -> dt.datetime:
        return self.send_at - CANCEL_DEADLINE


_SELECT = (
    "SELECT s.issue, s.send_at_utc, s.tz, s.created, b.issue IS NOT NULL, b.batch_id, b.state "
    "FROM schedules AS s LEFT JOIN sendgrid_batches AS b "
    f"ON b.issue = s.issue AND b.state != '{BatchState.CANCELLED}' "
)


def _schedule(row: tuple[Any, ...]) -> Schedule:
    issue, send_at, zone, created, via, batch_id, state = row
    return Schedule(
        issue=str(issue),
        send_at=dt.datetime.fromisoformat(send_at).astimezone(UTC),
        zone=str(zone),
        created=str(created),
        via_sendgrid=bool(via),
        batch_id=batch_id,
        batch_state=BatchState(state) if state is not None else None,
    )


def get_schedule(conn: Connection, slug: str) -> Schedule | None:
    row = conn.execute(_SELECT + "WHERE s.issue = ?", (slug,)).fetchone()
    return _schedule(row) if row else None


def held_until(conn: Connection, slug: str) -> dt.datetime | None:
    """When SendGrid sends an issue handed over to it (UTC); None for any other issue.

    Its batches count as sent from the hand-over, up to an hour before readers get it:
    the archive and the reports wait for this time.
    """
    item = get_schedule(conn, slug)
    return item.send_at if item is not None and item.submitted else None


def schedules(conn: Connection) -> list[Schedule]:
    rows = conn.execute(_SELECT + "ORDER BY s.send_at_utc, s.issue").fetchall()
    return [_schedule(row) for row in rows]


def schedule(
    conn: Connection,
    slug: str,
    when: SendTime,
    *,
    via_sendgrid: bool = False,
    rehearsals: Collection[str] = (),
) -> Schedule | None:
    """Record (or move) the send time of an issue; return the schedule it replaced.

    Refused for an issue already sent, and for one already handed to SendGrid (that
    needs `cancel` first).
    """
    from newsletter.issue.model import check_slug

    check_slug(slug)
    progress = issue_progress(conn, slug, rehearsals)  # a rehearsal does not count as sent
    counts = progress.counts
    # The same rule as `send`: failed recipients are tried again, so such an issue may be.
    if progress.finished and counts.get("sent", 0) and not counts.get("failed", 0):
        raise UserError(
            f"issue {slug!r} was already sent ({progress.describe()})",
            fix=f"nothing to schedule; `newsletter status {slug}` shows the details",
        )
    reached = sum(counts.get(state, 0) for state in ("sending", "sent", "unknown", "failed"))
    if via_sendgrid and reached:
        raise UserError(
            f"issue {slug!r} is partly sent ({progress.describe()}); SendGrid scheduling "
            "needs an issue nobody has received yet",
            fix=f"schedule it without --via-sendgrid, or finish it with `newsletter send {slug}`",
        )
    with transaction(conn):
        previous = get_schedule(conn, slug)
        if previous is not None and previous.submitted:
            raise _submitted_error(previous)
        conn.execute(
            "INSERT INTO schedules (issue, send_at_utc, tz, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (issue) DO UPDATE SET send_at_utc = excluded.send_at_utc, "
            "tz = excluded.tz, created = excluded.created",
            (slug, when.utc.isoformat(), when.zone.name, utc_now()),
        )
        conn.execute("DELETE FROM sendgrid_batches WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_reports WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_failures WHERE issue = ?", (slug,))
        if via_sendgrid:
            conn.execute(
                "INSERT INTO sendgrid_batches (issue, batch_id, send_at, state, updated) "
                "VALUES (?, NULL, ?, ?, ?)",
                (slug, int(when.utc.timestamp()), BatchState.PLANNED, utc_now()),
            )
    return previous


def unschedule(conn: Connection, slug: str) -> Schedule:
    """Forget an issue's send time; refused once it is in SendGrid's hands (`cancel`)."""
    with transaction(conn):
        previous = get_schedule(conn, slug)
        if previous is None:
            raise not_scheduled_error(slug)
        if previous.submitted:
            raise _submitted_error(previous)
        conn.execute("DELETE FROM schedules WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM sendgrid_batches WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_reports WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_failures WHERE issue = ?", (slug,))
    return previous


def note_too_late(conn: Connection, slug: str, now: dt.datetime) -> bool:
    """Record that a too-late issue was reported; False if it had been already."""
    with transaction(conn):
        fresh = conn.execute(
            "INSERT INTO schedule_reports (issue, too_late_reported) VALUES (?, ?) "
            "ON CONFLICT DO NOTHING",
            (slug, now.isoformat()),
        ).rowcount
    return bool(fresh)


def claim_batch(conn: Connection, slug: str, batch_id: str, after: int) -> bool:
    """Record the issue's SendGrid batch id, only while still planned; False if it is not.

    An `unschedule` since the cron run read its list wins.
    """
    with transaction(conn):
        claimed = conn.execute(
            "UPDATE sendgrid_batches SET batch_id = ?, state = ?, "
            "after_ledger_batch = ?, updated = ? WHERE issue = ? AND state = ?",
            (batch_id, BatchState.SUBMITTED, after, utc_now(), slug, BatchState.PLANNED),
        ).rowcount
    return bool(claimed)


def record_through_batch(conn: Connection, slug: str, through: int | None) -> None:
    """The last ledger batch sent under the issue's SendGrid batch id, for `cancel`."""
    with transaction(conn):
        conn.execute(
            "UPDATE sendgrid_batches SET through_ledger_batch = ?, updated = ? "
            "WHERE issue = ? AND state = ?",
            (through, utc_now(), slug, BatchState.SUBMITTED),
        )


def handed_over_range(conn: Connection, slug: str) -> tuple[int, int | None]:
    """The ledger batches SendGrid holds under the issue's batch id: (after, through]."""
    row = conn.execute(
        "SELECT after_ledger_batch, through_ledger_batch FROM sendgrid_batches WHERE issue = ?",
        (slug,),
    ).fetchone()
    after = int(row[0] or 0) if row else 0
    through = int(row[1]) if row and row[1] is not None else None
    return after, through


def forget_cancelled(conn: Connection, slug: str) -> None:
    """Mark the issue's SendGrid batch cancelled, forget its schedule (caller's transaction)."""
    conn.execute(
        "UPDATE sendgrid_batches SET state = ?, updated = ? WHERE issue = ?",
        (BatchState.CANCELLED, utc_now(), slug),
    )
    conn.execute("DELETE FROM schedules WHERE issue = ?", (slug,))
    conn.execute("DELETE FROM schedule_reports WHERE issue = ?", (slug,))


def not_scheduled_error(slug: str) -> UserError:
    return UserError(
        f"issue {slug!r} is not scheduled", fix="`newsletter schedule --list` shows what is"
    )


def _submitted_error(previous: Schedule) -> UserError:
    return UserError(
        f"issue {previous.issue!r} is already with SendGrid, to go out at {previous.describe()}",
        fix=f"stop it with `newsletter cancel {previous.issue}` first "
        f"(possible until {previous.local_time(previous.cancel_deadline):%H:%M})",
    )


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Progress:
    """What the ledger says about one issue."""

    counts: dict[str, int]
    prepared: bool = False

    @property
    def started(self) -> bool:
        return any(self.counts.values())

    @property
    def open(self) -> int:
        """Rows a send would still take: pending, or left `sending` by a killed run."""
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)

    @property
    def problems(self) -> int:
        return self.counts.get("failed", 0) + self.counts.get("unknown", 0)

    @property
    def finished(self) -> bool:
        """Prepared, and nothing left that a send would take."""
        return self.prepared and not self.open

    def describe(self) -> str:
        parts = [f"{self.counts.get('sent', 0):,} sent"]
        for state in ("pending", "failed", "unknown"):
            if self.counts.get(state):
                parts.append(f"{self.counts[state]:,} {state}")
        return ", ".join(parts)


def issue_progress(conn: Connection, slug: str, rehearsals: Collection[str] = ()) -> Progress:
    """What the ledger says of an issue; rows only `rehearsals` sent count as pending."""
    ledger = Ledger(conn)
    counts = ledger.counts(slug, rehearsals=rehearsals)
    return Progress(counts=counts, prepared=ledger.is_prepared(slug))


class Status(StrEnum):
    SCHEDULED = "scheduled"  # its time has not come
    DUE = "due"  # the next `send --due` sends it
    TOO_LATE = "too late"  # more than max_lateness late: by hand only
    SUBMITTED = "with SendGrid"  # handed over; SendGrid sends it at its time
    SENT = "sent"
    SENT_WITH_PROBLEMS = "sent, with problems"  # failed or unknown rows: see `status`
    FAILED = "failed"  # due, but its send failed; cron tries it again quietly


@dataclass(frozen=True)
class Entry:
    schedule: Schedule
    status: Status
    detail: str
    progress: Progress

    @property
    def issue(self) -> str:
        return self.schedule.issue


def list_schedules(
    conn: Connection,
    now: dt.datetime,
    *,
    max_lateness: dt.timedelta,
    submit_ahead: dt.timedelta = SUBMIT_AHEAD,
    rehearsals: Collection[str] = (),
) -> list[Entry]:
    """Every scheduled issue with its status at `now`, earliest first."""
    now = aware_utc(now)
    failures = recorded_failures(conn)
    entries = []
    for item in schedules(conn):
        progress = issue_progress(conn, item.issue, rehearsals)
        entry = _entry(item, progress, now, max_lateness, submit_ahead)
        if entry.status is Status.DUE and item.issue in failures:
            error, since = failures[item.issue]
            entry = Entry(
                item, Status.FAILED, f"{error} (since {since:%Y-%m-%d %H:%M} UTC)", entry.progress
            )
        entries.append(entry)
    return entries


def due_issues(
    conn: Connection,
    now: dt.datetime,
    max_lateness: dt.timedelta,
    submit_ahead: dt.timedelta = SUBMIT_AHEAD,
) -> list[Entry]:
    """The scheduled issues a cron run at `now` sends (too-late ones are not among them)."""
    entries = list_schedules(conn, now, max_lateness=max_lateness, submit_ahead=submit_ahead)
    return [entry for entry in entries if entry.status in (Status.DUE, Status.FAILED)]


def _entry(
    item: Schedule,
    progress: Progress,
    now: dt.datetime,
    max_lateness: dt.timedelta,
    submit_ahead: dt.timedelta,
) -> Entry:
    late = now - item.send_at
    if progress.finished:
        if item.via_sendgrid and late < dt.timedelta():
            return Entry(
                item,
                Status.SUBMITTED,
                f"{progress.counts.get('sent', 0):,} handed over; goes out in {span(late)}; "
                f"cancel until {item.local_time(item.cancel_deadline):%H:%M}",
                progress,
            )
        if progress.problems:
            return Entry(
                item,
                Status.SENT_WITH_PROBLEMS,
                f"{progress.describe()}: see `newsletter status {item.issue}`",
                progress,
            )
        if not progress.counts.get("sent"):
            return Entry(
                item,
                Status.SENT_WITH_PROBLEMS,
                f"nobody to send to when it was due: `newsletter send {item.issue}` "
                "sends it once the list has active subscribers",
                progress,
            )
        return Entry(item, Status.SENT, progress.describe(), progress)
    opens = item.send_at - (submit_ahead if item.via_sendgrid else dt.timedelta())
    if now < opens:
        detail = f"in {span(late)}"
        if item.via_sendgrid:
            detail += f" (handed to SendGrid from {item.local_time(opens):%H:%M})"
        return Entry(item, Status.SCHEDULED, detail, progress)
    if late > max_lateness:
        return Entry(
            item,
            Status.TOO_LATE,
            f"{span(late)} late (limit {span(max_lateness)}): "
            f"send it by hand with `newsletter send {item.issue}`",
            progress,
        )
    if progress.started:
        detail = f"resumes: {progress.describe()}"
    elif late < dt.timedelta():
        detail = f"handed to SendGrid now, goes out in {span(late)}"
    else:
        detail = "now" if late < dt.timedelta(minutes=1) else f"{span(late)} late"
    return Entry(item, Status.DUE, detail, progress)
