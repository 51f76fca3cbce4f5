"""Commands that time a send: `schedule`, `unschedule`, `cancel`, and the body of `send --due`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings, warn
from newsletter.errors import UsageError

if TYPE_CHECKING:
    from newsletter.schedule.cron import IssueRun, RunResult


@app.command("schedule")
def schedule_command(
    ctx: typer.Context,
    slug: str | None = typer.Argument(
        None, metavar="SLUG", help="The issue to schedule (a folder in issues/)."
    ),
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
    from newsletter.schedule.plan import plan_schedule
    from newsletter.schedule.send_time import system_clock

    try:
        result = plan_schedule(
            settings(ctx), slug, system_clock(), at=at, tz=tz, via_sendgrid=via_sendgrid
        )
    except UsageError as error:
        raise typer.BadParameter(error.what) from None
    if result.notice:
        warn(result.notice)
    for line in result.lines():
        info(line)


def _list(ctx: typer.Context) -> None:
    from newsletter.schedule.plan import schedule_table
    from newsletter.schedule.send_time import system_clock

    for line in schedule_table(settings(ctx), system_clock()):
        info(line)


@app.command()
def unschedule(
    ctx: typer.Context,
    slug: str = typer.Argument(..., metavar="SLUG", help="The scheduled issue."),
) -> None:
    """Forget when an issue goes out; cron leaves it alone from now on.

    A send already running goes on; an issue already handed to SendGrid needs
    `newsletter cancel`.

    Example:  newsletter unschedule 2026-12-01
    """
    from newsletter.schedule.plan import unschedule_issue

    previous = unschedule_issue(settings(ctx), slug)
    info(f"unscheduled {slug} (was {previous.describe()})")


@app.command()
def cancel(
    ctx: typer.Context,
    slug: str = typer.Argument(..., metavar="SLUG", help="The scheduled issue."),
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
    stopped = result.unreported_stop
    if stopped is not None:
        typer.secho(f"error: {stopped.line()}", fg=typer.colors.RED, err=True)
