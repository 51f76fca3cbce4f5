"""The core of the schedule commands: `schedule SLUG`, `schedule --list` and `unschedule`.

Each takes the settings and what the command line said, resolves the rest (the zone,
--at or the issue's send_at, cron or SendGrid), records it in the schedules store and
returns what the command says back. The clock is never read here: `now` is passed in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.deliver.backends import uncounted_rehearsals
from newsletter.errors import UsageError, UserError
from newsletter.issue.file import load_send_at
from newsletter.issue.model import ISSUE_FILE
from newsletter.schedule.readiness import check_ready
from newsletter.schedule.send_time import (
    SendTime,
    Zone,
    issue_send_time,
    parse_send_time,
    resolve_zone,
    span,
    wall_clock,
)
from newsletter.schedule.store import (
    Entry,
    Schedule,
    list_schedules,
    open_schedule_database,
    schedule,
    unschedule,
)

if TYPE_CHECKING:
    from newsletter.config import Settings


@dataclass(frozen=True)
class ScheduleResult:
    """An issue just scheduled: when, how, and the schedule it replaced."""

    slug: str
    when: SendTime
    zone: Zone
    origin: str  # how the time was read: "time zone from --tz", "send_at in issue.yaml, ..."
    now: dt.datetime
    via_sendgrid: bool
    previous: Schedule | None = None

    @property
    def notice(self) -> str | None:
        """A warning to show first: an ambiguous time was resolved."""
        return self.when.notice

    def lines(self) -> list[str]:
        """What `newsletter schedule` says, one line each."""
        when = self.when
        lines = [
            f"scheduled {self.slug} for {wall_clock(when.local, self.zone.name)} "
            f"({self.origin}) = {when.utc:%Y-%m-%d %H:%M} UTC, "
            f"in {span(when.utc - self.now)}"
        ]
        if self.previous is not None:
            lines.append(f"(was {self.previous.describe()})")
        if self.via_sendgrid:
            lines.append(
                "`newsletter send --due` hands it to SendGrid during the hour before; "
                f"`newsletter cancel {self.slug}` can stop it until 10 minutes before"
            )
        else:
            lines.append(
                "`newsletter send --due` (from cron, every few minutes) sends it when it is due"
            )
        return lines


def plan_schedule(
    settings: Settings,
    slug: str,
    now: dt.datetime,
    *,
    at: str | None = None,
    tz: str | None = None,
    via_sendgrid: bool | None = None,
) -> ScheduleResult:
    """Schedule `slug` at --at (read in the zone) or its issue.yaml send_at; record it.

    `tz` and `via_sendgrid` default to the [delivery] settings. Raises UsageError when
    neither --at nor send_at says when, UserError for everything the user must fix.
    """
    issue_file = settings.issue_dir(slug) / ISSUE_FILE
    if not issue_file.is_file():
        raise UserError(
            f"no issue {slug!r}",
            where=issue_file,
            fix=f"start it with `newsletter new {slug}`",
        )
    zone = resolve_zone(tz, settings.file.delivery.timezone)
    if at:
        when, origin = parse_send_time(at, zone, now), f"time zone from {zone.source}"
    else:
        when, origin = _issue_send_time(issue_file, zone, now)
    through_sendgrid = (
        via_sendgrid if via_sendgrid is not None else settings.file.delivery.via_sendgrid
    )
    if through_sendgrid:
        _require_sendgrid(settings)
    check_ready(settings, slug)
    conn = open_schedule_database(settings)
    try:
        previous = schedule(
            conn,
            slug,
            when,
            via_sendgrid=through_sendgrid,
            rehearsals=uncounted_rehearsals(settings),
        )
    finally:
        conn.close()
    return ScheduleResult(slug, when, zone, origin, now, through_sendgrid, previous)


def _issue_send_time(issue_file: Path, zone: Zone, now: dt.datetime) -> tuple[SendTime, str]:
    """The issue's own send_at, and how it was read (for the line that confirms it)."""
    value, where = load_send_at(issue_file)
    if value is None:
        raise UsageError(f'say when: give --at "YYYY-MM-DD HH:MM", or set send_at in {issue_file}')
    when = issue_send_time(value, zone, now, where)
    if value.utcoffset() is None:
        return when, f"send_at in {ISSUE_FILE}, time zone from {zone.source}"
    return when, f"send_at {value.isoformat(timespec='minutes')} in {ISSUE_FILE}"


def _require_sendgrid(settings: Settings) -> None:
    from newsletter.deliver.backends import resolve_name

    if resolve_name(settings) != "sendgrid":
        raise UserError(
            "--via-sendgrid needs the sendgrid backend (SENDGRID_API_KEY set, "
            "[delivery] backend auto or sendgrid)",
            where="--via-sendgrid",
            fix="set the key in .env, or schedule with --via-cron",
        )


def schedule_table(settings: Settings, now: dt.datetime) -> list[str]:
    """What `newsletter schedule --list` says: every scheduled issue and its status at `now`."""
    lateness = dt.timedelta(hours=settings.file.delivery.max_lateness_hours)
    conn = open_schedule_database(settings)
    try:
        entries = list_schedules(
            conn, now, max_lateness=lateness, rehearsals=uncounted_rehearsals(settings)
        )
    finally:
        conn.close()
    if not entries:
        return ["nothing is scheduled — `newsletter schedule SLUG --at TIME` schedules an issue"]
    return format_entries(entries)


def format_entries(entries: list[Entry]) -> list[str]:
    """One aligned line per scheduled issue: issue, local time, UTC, how, status."""
    rows = [
        (
            entry.issue,
            entry.schedule.describe(),
            f"{entry.schedule.send_at:%Y-%m-%d %H:%M} UTC",
            "sendgrid" if entry.schedule.via_sendgrid else "cron",
            f"{entry.status.value}: {entry.detail}",
        )
        for entry in entries
    ]
    header = ("ISSUE", "SEND AT", "UTC", "VIA", "STATUS")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in [header, *rows]
    ]


def unschedule_issue(settings: Settings, slug: str) -> Schedule:
    """Forget when `slug` goes out; the schedule it had (refused once with SendGrid)."""
    conn = open_schedule_database(settings)
    try:
        return unschedule(conn, slug)
    finally:
        conn.close()
