"""Commands that time a send: `schedule`, `unschedule`, `cancel`, and the body of `send --due`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings, warn
from newsletter.errors import UserError

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from newsletter.config import Settings
    from newsletter.schedule.cron import IssueRun, RunResult
    from newsletter.schedule.send_time import SendTime, Zone
    from newsletter.schedule.store import Entry


@app.command("schedule")
def schedule_command(
    ctx: typer.Context,
    slug: str | None = typer.Argument(None, help="The issue to schedule (a folder in issues/)."),
    at: str | None = typer.Option(
        None,
        "--at",
        metavar="TIME",
        help='When it goes out, local time: "YYYY-MM-DD HH:MM". Add an offset '
        '("2026-10-25 02:30+01:00") only to pick one of a time that happens twice. '
        "Default: send_at in the issue's issue.yaml.",
    ),
    tz: str | None = typer.Option(
        None,
        "--tz",
        metavar="ZONE",
        help="IANA time zone of --at, e.g. Europe/Berlin (default: [delivery] timezone, "
        "else the system's zone).",
    ),
    via_sendgrid: bool | None = typer.Option(
        None,
        "--via-sendgrid/--via-cron",
        help="Hand the issue to SendGrid ahead of time so it goes out on the minute and can "
        "be cancelled (default: [delivery] via_sendgrid, else cron sends it).",
    ),
    list_: bool = typer.Option(False, "--list", "-l", help="Show what is scheduled and due."),
) -> None:
    """Record when an issue goes out; `newsletter send --due` (from cron) sends it then.

    The time is read in the zone given (daylight saving included) and stored with it.
    A time the clocks skip is refused; one that happens twice takes the first, and says
    so. Without --at, the issue's send_at is used (read the same way, unless it has an
    offset). Sending late by more than [delivery] max_lateness_hours is left to you.

    `newsletter send --due` exits 0 sent, 1 settings or workspace wrong, 3 due but not
    sent (failed or too late), 4 API key refused, 5 another run holds the lock, 6 partly
    failed, 7 nothing due (and prints nothing).

    Examples:

    \b
      newsletter schedule 2026-12-01 --at "2026-12-01 08:00" --tz Europe/Berlin
      newsletter schedule 2026-12-01 --tz Europe/Berlin    (at send_at in issue.yaml)
      newsletter schedule --list
    """
    if list_:
        if slug or at:
            raise typer.BadParameter("--list takes no issue or --at", param_hint="--list")
        _list(ctx)
        return
    if not slug:
        raise typer.BadParameter("name the issue, or use --list", param_hint="SLUG")
    from newsletter.issue.model import ISSUE_FILE
    from newsletter.schedule.send_time import (
        parse_send_time,
        resolve_zone,
        span,
        system_clock,
        wall_clock,
    )
    from newsletter.schedule.store import open_schedule_database, schedule

    workspace = settings(ctx)
    issue_file = workspace.issue_dir(slug) / ISSUE_FILE
    if not issue_file.is_file():
        raise UserError(
            f"no issue {slug!r}",
            where=issue_file,
            fix=f"start it with `newsletter new {slug}`",
        )
    now = system_clock()
    zone = resolve_zone(tz, workspace.file.delivery.timezone)
    if at:
        when, origin = parse_send_time(at, zone, now), f"time zone from {zone.source}"
    else:
        when, origin = _issue_send_time(issue_file, zone, now)
    through_sendgrid = (
        via_sendgrid if via_sendgrid is not None else workspace.file.delivery.via_sendgrid
    )
    if through_sendgrid:
        _require_sendgrid(workspace)
    conn = open_schedule_database(workspace)
    try:
        previous = schedule(conn, slug, when, via_sendgrid=through_sendgrid)
    finally:
        conn.close()
    if when.notice:
        warn(when.notice)
    info(
        f"scheduled {slug} for {wall_clock(when.local, zone.name)} "
        f"({origin}) = {when.utc:%Y-%m-%d %H:%M} UTC, "
        f"in {span(when.utc - now)}"
    )
    if previous is not None:
        info(f"(was {previous.describe()})")
    if through_sendgrid:
        info(
            "`newsletter send --due` hands it to SendGrid during the hour before; "
            f"`newsletter cancel {slug}` can stop it until 10 minutes before"
        )
    else:
        info("`newsletter send --due` (from cron, every few minutes) sends it when it is due")


def _issue_send_time(issue_file: Path, zone: Zone, now: dt.datetime) -> tuple[SendTime, str]:
    """The issue's own send_at, and how it was read (for the line that confirms it)."""
    from newsletter.issue.model import ISSUE_FILE, load_send_at
    from newsletter.schedule.send_time import issue_send_time

    value, where = load_send_at(issue_file)
    if value is None:
        raise typer.BadParameter(
            f'say when: give --at "YYYY-MM-DD HH:MM", or set send_at in {issue_file}'
        )
    when = issue_send_time(value, zone, now, where)
    if value.utcoffset() is None:
        return when, f"send_at in {ISSUE_FILE}, time zone from {zone.source}"
    return when, f"send_at {value.isoformat(timespec='minutes')} in {ISSUE_FILE}"


def _require_sendgrid(workspace: Settings) -> None:
    from newsletter.deliver.backends import resolve_name

    if resolve_name(workspace) != "sendgrid":
        raise UserError(
            "--via-sendgrid needs the sendgrid backend (SENDGRID_API_KEY set, "
            "[delivery] backend auto or sendgrid)",
            where="--via-sendgrid",
            fix="set the key in .env, or schedule with --via-cron",
        )


def _list(ctx: typer.Context) -> None:
    import datetime as dt

    from newsletter.schedule.send_time import system_clock
    from newsletter.schedule.store import list_schedules, open_schedule_database

    workspace = settings(ctx)
    lateness = dt.timedelta(hours=workspace.file.delivery.max_lateness_hours)
    conn = open_schedule_database(workspace)
    try:
        entries = list_schedules(conn, system_clock(), max_lateness=lateness)
    finally:
        conn.close()
    if not entries:
        info("nothing is scheduled — `newsletter schedule SLUG --at TIME` schedules an issue")
        return
    for line in format_entries(entries):
        info(line)


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


@app.command()
def unschedule(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="The scheduled issue."),
) -> None:
    """Forget when an issue goes out; cron leaves it alone from now on.

    A send already running goes on; an issue already handed to SendGrid needs
    `newsletter cancel`.

    Example:  newsletter unschedule 2026-12-01
    """
    from newsletter.schedule.store import open_schedule_database
    from newsletter.schedule.store import unschedule as forget

    conn = open_schedule_database(settings(ctx))
    try:
        previous = forget(conn, slug)
    finally:
        conn.close()
    info(f"unscheduled {slug} (was {previous.describe()})")


@app.command()
def cancel(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="The scheduled issue."),
) -> None:
    """Stop a scheduled issue, at SendGrid if it was handed over (--via-sendgrid).

    SendGrid takes a cancellation until 10 minutes before the send time; after that
    this refuses and changes nothing. The recipients become pending again, so a later
    `newsletter send` or `newsletter schedule` reaches them exactly once.

    Example:  newsletter cancel 2026-12-01
    """
    from newsletter.schedule.handover import cancel as stop
    from newsletter.schedule.send_time import system_clock

    done = stop(settings(ctx), slug, system_clock())
    if not done.at_sendgrid:
        info(
            f"unscheduled {slug} (was {done.schedule.describe()}); "
            "nothing had been handed to SendGrid yet"
        )
        return
    info(
        f"cancelled {slug} at SendGrid (batch {done.schedule.batch_id}): nobody gets it at "
        f"{done.schedule.describe()}; {done.requeued:,} recipients are pending again — "
        f"`newsletter schedule {slug} --at ...` or `newsletter send {slug}` sends it later"
    )


def run_due_command(ctx: typer.Context) -> None:
    """`newsletter send --due`: quiet unless something happened; exit code says what.

    Exit codes: 0 sent, 1 settings/key/workspace wrong, 3 due but nothing went out
    (failed, or too late), 4 API key refused, 5 another run holds the lock, 6 partly
    failed, 7 nothing due.
    """
    from newsletter.schedule.cron import run_due
    from newsletter.schedule.send_time import system_clock

    result = run_due(settings(ctx), system_clock(), on_issue=_say)
    _say_stopped(result)
    raise typer.Exit(int(result.exit_code))


def _say(run: IssueRun) -> None:
    if run.ok:
        info(run.line)
    else:
        typer.secho(f"error: {run.line}", fg=typer.colors.RED, err=True)


def _say_stopped(result: RunResult) -> None:
    stopped = result.stopped
    if stopped is None or any(run.error is stopped for run in result.issues):
        return
    typer.secho(f"error: {stopped.line()}", fg=typer.colors.RED, err=True)
