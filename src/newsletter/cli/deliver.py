"""Commands that deliver: `send` (with --test and --dry-run) and `subscribers sync`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings, warn
from newsletter.cli.audience import subscribers_app
from newsletter.deliver.backends import AUTO, names
from newsletter.errors import DeliveryError, ExitCode, UserError

if TYPE_CHECKING:

    class BackendName(StrEnum):
        """The registered backends; a name outside them is a usage error."""

else:  # the choice comes from the registry, so a registered backend is offered at once
    BackendName = StrEnum("BackendName", {name.upper(): name for name in (AUTO, *names())})

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.deliver.dry_run import DryRun
    from newsletter.deliver.preflight import Preflight
    from newsletter.deliver.sender import Progress as SendProgress
    from newsletter.deliver.sender import Sender, Summary
    from newsletter.deliver.suppressions import SyncReport

LISTED = 20  # unknown / failed addresses printed before "… and N more"


@app.command()
def send(
    ctx: typer.Context,
    slug: str | None = typer.Argument(
        None, metavar="SLUG", help="The issue to send (a folder in issues/); none with --due."
    ),
    test: list[str] = typer.Option(
        [],
        "--test",
        metavar="ADDR",
        help="Send the subscribers' message, subject marked [TEST], to ADDR only "
        "(repeatable); nothing is recorded as sent.",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Build and check every request; send nothing, change nothing."
    ),
    backend: BackendName | None = typer.Option(
        None,
        "--backend",
        metavar="BACKEND",
        help="sendgrid, smtp or outbox (default: [delivery] backend; "
        "auto = sendgrid when SENDGRID_API_KEY is set, else outbox).",
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    resend: bool = typer.Option(
        False, "--resend", help="Send a finished issue again, to every active subscriber."
    ),
    resend_unknown: bool = typer.Option(
        False,
        "--resend-unknown",
        help="Also send to recipients whose earlier request lost its answer "
        "(they may get the issue twice).",
    ),
    new_subscribers: bool = typer.Option(
        False,
        "--new-subscribers",
        help="Also send to those who subscribed after the issue's recipients were taken "
        "(at its first send) and never got it; nobody gets it twice.",
    ),
    no_sync: bool = typer.Option(
        False, "--no-sync", help="Skip pulling SendGrid's suppression lists first."
    ),
    due: bool = typer.Option(
        False, "--due", help="Send what `newsletter schedule` made due (the cron entry)."
    ),
) -> None:
    """Build the issue and send it to every active subscriber, each exactly once.

    Shows subject, sender, backend and recipient count and asks first (--yes skips
    that; without a terminal --yes is required). The recipients are taken at the first
    send; a rerun sends only to those of them not yet sent, and --new-subscribers adds
    those who subscribed since. Exit status 3 when the issue is not complete (a recipient
    failed or is unknown), 4 when the key is refused.

    Example:  newsletter send 2026-12-01 --test me@example.org

    From cron:  newsletter send --due
    """
    if due:
        given = {
            "--test": bool(test),
            "--dry-run": dry_run,
            "--backend": backend is not None,
            "--resend": resend,
            "--resend-unknown": resend_unknown,
            "--new-subscribers": new_subscribers,
            "--no-sync": no_sync,
        }
        _refuse_with_due(slug, [option for option, on in given.items() if on])
        from newsletter.cli.schedule import run_due_command

        run_due_command(ctx)
        return
    if slug is None:
        raise typer.BadParameter("give the issue to send, e.g. `newsletter send 2026-12-01`")
    workspace = settings(ctx)
    if test:
        _send_test(workspace, slug, test, backend and backend.value)
        return
    from newsletter.deliver.options import SendOptions
    from newsletter.deliver.sender import Sender

    options = SendOptions(
        backend=backend and backend.value,
        resend=resend,
        resend_unknown=resend_unknown,
        new_subscribers=new_subscribers,
        sync=not no_sync,
        dry_run=dry_run,
    )
    with Sender(workspace, slug, options) as sender:
        if dry_run:
            _print_dry_run(sender.dry_run())
            return
        preflight = sender.preflight()
        _print_preflight(preflight)
        if preflight.recipients == 0:
            hint = (
                ": the list has no active subscribers — add some with "
                "`newsletter subscribers import FILE.csv`"
                if preflight.active == 0
                else ""
            )
            info(f"nothing to send{hint}")
            if preflight.unknown_held:
                raise DeliveryError(
                    f"issue {slug!r} is not complete: {preflight.unknown_held:,} recipient"
                    f"{_s(preflight.unknown_held)} unknown (the request may have gone out)",
                    fix=f"see `newsletter status {slug}`; `newsletter send {slug} "
                    "--resend-unknown` sends to them (some may get it twice)",
                )
            return
        _confirm(preflight, yes)
        summary = _run(sender)
    _print_summary(slug, summary)


# Why each option has no place in the cron run: said when one is given with --due.
_NOT_WITH_DUE = {
    "--test": "a test goes out at once to the addresses given; "
    "run `newsletter send SLUG --test ADDR`",
    "--dry-run": "a dry run checks one issue; run `newsletter send SLUG --dry-run`",
    "--backend": "it sends with [delivery] backend in newsletter.toml "
    "(SendGrid for an issue scheduled --via-sendgrid)",
    "--resend": "it never sends an issue twice; send it again by hand with "
    "`newsletter send SLUG --resend`",
    "--resend-unknown": "recipients left unknown are resent only by hand, with "
    "`newsletter send SLUG --resend-unknown`",
    "--new-subscribers": "a scheduled send goes to the recipients taken at its start; reach "
    "later subscribers by hand with `newsletter send SLUG --new-subscribers`",
    "--no-sync": "a scheduled send never skips SendGrid's suppression lists",
}


def _refuse_with_due(slug: str | None, options: list[str]) -> None:
    """A usage error naming the SLUG, or the first option, that `--due` would ignore."""
    if slug is not None:
        raise typer.BadParameter(
            f"--due takes no issue: it sends every scheduled issue that is due; "
            f"`newsletter send {slug}` sends {slug} now"
        )
    if options:
        first = options[0]
        raise typer.BadParameter(f"{first} does not apply to --due: {_NOT_WITH_DUE[first]}")


@subscribers_app.command()
def sync(ctx: typer.Context) -> None:
    """Pull SendGrid's suppression lists and mark those subscribers.

    Global unsubscribes and the unsubscribe group's become unsubscribed, bounces and
    invalid addresses bounced, spam reports complained. `send` does this first unless
    given --no-sync.

    Example:  newsletter subscribers sync
    """
    from newsletter.db import open_database
    from newsletter.deliver.backends.sendgrid.suppressions import client_for
    from newsletter.deliver.suppressions import sync_suppressions

    workspace = settings(ctx)
    client = client_for(workspace)
    conn = open_database(workspace.database)
    try:
        report = sync_suppressions(conn, client, workspace.file.delivery.asm_group_id)
    finally:
        conn.close()
    for line in _sync_lines(report):
        info(line)


# --------------------------------------------------------------------------- printing


def _send_test(workspace: Settings, slug: str, addresses: list[str], backend: str | None) -> None:
    from newsletter.deliver.send_test import first_of_each, send_test

    used, _ = send_test(workspace, slug, addresses, backend, notify=warn)
    who = ", ".join(first_of_each(addresses))
    info(f"sent a test of {slug} to {who} via {used.describe()}; nothing recorded as sent")


def _print_preflight(preflight: Preflight) -> None:
    for line in preflight.warnings:
        warn(line)
    if preflight.sync is not None:
        for line in _sync_lines(preflight.sync):
            info(line)
    if preflight.recovered:
        warn(
            f"{preflight.recovered:,} recipient(s) of an interrupted run are now unknown: "
            "their request may have gone out"
        )
    info(f"issue       {preflight.slug}")
    info(f"subject     {preflight.subject}")
    info(f"from        {preflight.sender}")
    info(f"backend     {preflight.backend}")
    details = [f"{preflight.active:,} active subscriber{_s(preflight.active)}"]
    if preflight.already_sent:
        details.append(f"{preflight.already_sent:,} already sent")
    if preflight.unknown_held:
        details.append(f"{preflight.unknown_held:,} unknown, not resent")
    info(f"recipients  {preflight.recipients:,} ({', '.join(details)})")


def _confirm(preflight: Preflight, yes: bool) -> None:
    if yes:
        return
    if not _interactive():
        raise UserError(
            "no terminal to confirm the send",
            fix="run it with --yes to send without asking (as cron does)",
        )
    noun = f"{preflight.recipients:,} recipient{_s(preflight.recipients)}"
    if not typer.confirm(f"Send {preflight.slug} to {noun}?", default=False):
        info("not sent")
        raise typer.Exit(ExitCode.USER_ERROR)


def _interactive() -> bool:
    return sys.stdin.isatty()


def _run(sender: Sender) -> Summary:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Drawn only on a terminal: cron logs get the summary, not a thousand redraws.
    with Progress(
        *columns,
        TextColumn("{task.description}"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("", total=None)

        def update(event: SendProgress) -> None:
            progress.update(task, completed=event.done, total=event.total)
            if event.note:
                progress.update(task, description=event.note)
                if not console.is_terminal:
                    warn(event.note)

        return sender.send(update)


def _print_summary(slug: str, summary: Summary) -> None:
    seconds = f"{summary.seconds:.1f} s"
    unit = f"{summary.requests:,} {summary.unit}{_s(summary.requests)}"
    info(
        f"sent {summary.sent:,}, skipped {summary.skipped:,}, failed {summary.failed:,}, "
        f"unknown {summary.unknown:,} in {seconds} ({unit})"
    )
    if summary.unknown:
        info(
            "unknown — the request may have gone out; not resent unless "
            f"`newsletter send {slug} --resend-unknown`:"
        )
        _list(summary.unknown_addresses, summary.unknown)
    if summary.failed:
        info(f"failed — refused; a rerun of `newsletter send {slug}` tries them again:")
        lines = [f"{address}: {error}" for address, error in summary.failures]
        _list(lines, summary.failed)
    if summary.stopped is not None:
        raise summary.stopped
    if not summary.ok:
        raise DeliveryError(
            f"{summary.failed + summary.unknown:,} recipient(s) of {slug} not confirmed sent",
            fix=f"see `newsletter status {slug}`",
        )


def _list(lines: list[str], total: int) -> None:
    for line in lines[:LISTED]:
        info(f"  {line}")
    if total > LISTED:
        info(f"  … and {total - LISTED:,} more (see `newsletter status`)")


def _print_dry_run(report: DryRun) -> None:
    from newsletter.build.checks import GMAIL_CLIP_BYTES

    for line in report.warnings:
        warn(line)
    info(f"dry run of {report.backend} send: nothing sent, nothing recorded")
    details = [f"{report.active:,} active subscriber{_s(report.active)}"]
    if report.already_sent:
        details.append(f"{report.already_sent:,} already sent")
    info(f"recipients  {report.recipients:,} ({', '.join(details)})")
    if report.backend == "sendgrid":
        info(
            f"requests    {report.batches:,} (largest {report.largest_request_bytes:,} bytes, "
            f"{report.most_personalizations:,} personalizations)"
        )
    if report.worst_recipient is not None:
        info(
            f"largest     {report.worst_html_bytes:,} bytes of HTML ({report.worst_recipient}); "
            f"~{report.worst_case_bytes:,} with click tracking of {report.tracked_links} links "
            f"(Gmail clips from {GMAIL_CLIP_BYTES:,})"
        )
    for problem in report.problems:
        typer.secho(f"problem: {problem}", fg=typer.colors.RED, err=True)
    if not report.ok:
        raise UserError(
            f"the dry run found {len(report.problems)} problem(s)", fix="see the lines above"
        )
    info("ok: every request is valid")


def _sync_lines(report: SyncReport) -> Iterator[str]:
    lists = ", ".join(f"{report.fetched[label]:,} {label}" for label in report.fetched)
    yield f"synced suppressions: {lists}"
    marked = {label: n for label, n in report.marked.items() if n}
    if marked:
        yield "marked " + ", ".join(f"{n:,} from {label}" for label, n in marked.items())


def _s(count: int) -> str:
    return "" if count == 1 else "s"
