"""Commands over the list and the ledger: `subscribers ...` and `status`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from newsletter.cli.app import app, info, settings
from newsletter.errors import UserError

if TYPE_CHECKING:
    from newsletter.audience.csv_import import ImportReport, RowProblem

subscribers_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The subscriber list: import, add, remove, unsubscribe, list, export, stats.\n\n"
    "Example:  newsletter subscribers import members.csv",
)

if TYPE_CHECKING:
    from newsletter.db import Connection
app.add_typer(subscribers_app, name="subscribers")


@contextmanager
def _database(ctx: typer.Context) -> Iterator[Connection]:
    from newsletter.db import open_database

    conn = open_database(settings(ctx).database)
    try:
        yield conn
    finally:
        conn.close()


def _check_status(status: str | None) -> None:
    from newsletter.audience.records import STATUSES

    if status is not None and status not in STATUSES:
        raise UserError(
            f"unknown status {status!r}", where="--status", fix=f"use {', '.join(STATUSES)}"
        )


@subscribers_app.command("import")
def import_(
    ctx: typer.Context,
    file: Path = typer.Argument(
        ...,
        metavar="FILE",
        help="CSV with an `email` column; name, first_name, status and any other columns are kept.",
    ),
    status: str | None = typer.Option(
        None,
        "--status",
        metavar="STATUS",
        help="Give every row of the file this status (active, unsubscribed, bounced, "
        "complained), for an export of opt-outs that has no status column, e.g. "
        "--status unsubscribed. A row's own status can only make it less active.",
    ),
) -> None:
    """Add subscribers from a CSV file.

    Every rejected row is reported as FILE:LINE: reason (FILE:LINE:COLUMN: for a bad
    cell). The good rows go in together even when some are rejected (exit status 1
    then). Rows already on the list are skipped, and nobody unsubscribed, bounced or
    complained is ever re-activated. UTF-8 (with or without BOM); comma, semicolon or
    tab separated.

    Exports of Mailchimp, Ghost, Buttondown, listmonk and Substack import as they are:
    their status columns (status, subscribed_to_emails, subscriber_type, email_disabled)
    are understood, and Mailchimp's unsubscribed and cleaned exports (UNSUB_TIME,
    CLEAN_TIME columns) import as unsubscribed and bounced.

    Example:  newsletter subscribers import members.csv

    Example:  newsletter subscribers import unsubscribed.csv --status unsubscribed
    """
    from newsletter.audience.store import SubscriberStore

    _check_status(status)

    def report(problem: RowProblem) -> None:
        where = f"{problem.line}:{problem.column}" if problem.column else f"{problem.line}"
        typer.echo(f"{file}:{where}: {problem.reason}", err=True)

    with _database(ctx) as conn:
        result = SubscriberStore(conn).import_csv(file, on_problem=report, status=status)
    info(_import_summary(file, result))
    if result.rejected:
        rows = "1 row was" if result.rejected == 1 else f"{result.rejected:,} rows were"
        rest = "the other rows were imported" if result.added else "no other row was new"
        raise UserError(
            f"{rows} rejected (listed above); {rest}",
            fix="correct those rows and import the file again (rows already on the list "
            "are skipped)",
        )


def _import_summary(file: Path, report: ImportReport) -> str:
    parts = []
    if report.rejected:
        parts.append(f"{report.rejected:,} rejected")
    if report.already_subscribed:
        parts.append(f"{report.already_subscribed:,} already on the list")
    parts += [f"{n:,} kept {status}" for status, n in sorted(report.kept.items())]
    parts += [f"{n:,} marked {status}" for status, n in sorted(report.marked.items())]
    noun = "subscriber" if report.added == 1 else "subscribers"
    rows = "row" if report.rows == 1 else "rows"
    details = f"{report.rows:,} {rows}" + (": " + ", ".join(parts) if parts else "")
    return f"imported {report.added:,} new {noun} from {file} ({details})"


@subscribers_app.command()
def add(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL", help="The address to add."),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="Full name, as they write it."
    ),
    first_name: str | None = typer.Option(
        None, "--first-name", metavar="NAME", help="For a greeting."
    ),
) -> None:
    """Add one subscriber (active).

    Example:  newsletter subscribers add ann@example.org --name "Ann Smith"
    """
    from newsletter.audience.store import SubscriberStore

    with _database(ctx) as conn:
        subscriber = SubscriberStore(conn).add(email, name, first_name=first_name)
    who = f"{subscriber.name} <{subscriber.email}>" if subscriber.name else subscriber.email
    info(f"added {who}")


@subscribers_app.command()
def remove(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL", help="The address to delete from the list."),
) -> None:
    """Delete a subscriber from the list.

    To stop sending but keep the address, use `unsubscribe` instead. The ledger keeps
    which issues went to the address, so adding it again later never sends anyone an
    issue twice.

    Example:  newsletter subscribers remove ann@example.org
    """
    from newsletter.audience.store import SubscriberStore

    with _database(ctx) as conn:
        subscriber = SubscriberStore(conn).remove(email)
    info(f"removed {subscriber.email}")


@subscribers_app.command()
def unsubscribe(
    ctx: typer.Context,
    email: str = typer.Argument(..., metavar="EMAIL", help="The address that asked to stop."),
    reason: str = typer.Option(
        "by the editors", "--reason", metavar="TEXT", help="Kept with the status."
    ),
) -> None:
    """Mark a subscriber unsubscribed.

    No further issue is sent to them; an import never re-activates them.

    Example:  newsletter subscribers unsubscribe ann@example.org --reason "asked by email"
    """
    from newsletter.audience.records import Status
    from newsletter.audience.store import SubscriberStore

    with _database(ctx) as conn:
        store = SubscriberStore(conn)
        current = store.get(email)
        if current is not None and current.status == Status.UNSUBSCRIBED:
            info(f"{current.email} is already unsubscribed")
            return
        subscriber = store.unsubscribe(email, reason)
    info(f"unsubscribed {subscriber.email}")


@subscribers_app.command("list")
def list_(
    ctx: typer.Context,
    status: str | None = typer.Option(
        None,
        "--status",
        metavar="STATUS",
        help="Only this status: active, unsubscribed, bounced, complained.",
    ),
    limit: int | None = typer.Option(None, "--limit", "-n", metavar="N", min=1, help="At most N."),
) -> None:
    """Print subscribers, one a line.

    Status, address and name, in the order they were added; for someone inactive, also
    the reason and the date of the change, e.g.
    "unsubscribed ann@example.org  Ann  (asked by email, 2026-12-01)".

    Example:  newsletter subscribers list --status bounced --limit 20
    """
    from newsletter.audience.store import SubscriberStore

    _check_status(status)
    with _database(ctx) as conn:
        for count, subscriber in enumerate(SubscriberStore(conn).iter_subscribers(status)):
            if limit is not None and count >= limit:
                break
            line = f"{subscriber.status:<12} {subscriber.email}"
            if subscriber.name:
                line = f"{line}  {subscriber.name}"
            if subscriber.status != "active":
                fallback = (
                    "signed up, not confirmed yet"
                    if subscriber.status == "pending"
                    else "no reason recorded"
                )
                why = subscriber.status_reason or fallback
                line = f"{line}  ({why}, {subscriber.updated[:10]})"
            info(line)


@subscribers_app.command()
def export(
    ctx: typer.Context,
    file: str = typer.Argument(
        "-", metavar="FILE", help="Where to write the CSV; - for standard output."
    ),
    status: str | None = typer.Option(None, "--status", metavar="STATUS", help="Only this status."),
) -> None:
    """Write the list as CSV.

    Columns: email, name, first_name, status, status_reason, status_changed (the reason
    and the time of the change, for someone inactive), then the custom fields. The file
    imports back as it is, opt-outs, their reasons and dates included.

    Example:  newsletter subscribers export members.csv
    """
    from newsletter.audience.store import SubscriberStore

    _check_status(status)
    with _database(ctx) as conn:
        store = SubscriberStore(conn)
        if file == "-":
            store.export_csv(sys.stdout, status)
            return
        try:
            count = store.export_csv(Path(file), status)
        except OSError as exc:
            raise UserError(f"cannot write the file ({exc.strerror})", where=file) from None
    info(f"exported {count:,} subscriber{'' if count == 1 else 's'} to {file}")


@subscribers_app.command()
def stats(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Count subscribers per status.

    Example:  newsletter subscribers stats --json
    """
    from newsletter.audience.records import STATUSES
    from newsletter.audience.store import SubscriberStore

    with _database(ctx) as conn:
        counts = SubscriberStore(conn).stats()
    if as_json:
        _print_json(counts)
        return
    info(f"{counts['total']:,} subscribers")
    width = max(len(f"{n:,}") for n in counts.values())
    for status in STATUSES:
        info(f"  {status:<13}{counts[status]:>{width},}")


@app.command()
def status(
    ctx: typer.Context,
    slug: str = typer.Argument(..., metavar="SLUG", help="The issue."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    limit: int = typer.Option(
        20,
        "--limit",
        "-n",
        metavar="N",
        min=0,
        help="Unknown/failed recipients listed per state; 0 = all.",
    ),
) -> None:
    """What the ledger knows of an issue.

    Recipients per state; the unknown and failed ones listed with their last error.

    Example:  newsletter status 2026-12-01 --json
    """
    from newsletter.deliver.ledger import FAILED, SENT, SKIPPED, STATES, UNKNOWN, Ledger

    with _database(ctx) as conn:
        ledger = Ledger(conn)
        if slug not in ledger.issues():
            issue_dir = settings(ctx).issue_dir(slug)
            if not issue_dir.is_dir():
                raise UserError(
                    f"no issue {slug!r}",
                    where=issue_dir,
                    fix="check the name against the folders in issues/",
                )
            raise UserError(
                f"nothing has been sent for issue {slug!r} (it has no ledger)",
                fix=f"send it with `newsletter send {slug}`",
            )
        counts = ledger.counts(slug)
        complete = ledger.is_complete(slug)
        by_backend = ledger.sent_by_backend(slug)
        problems = {
            state: list(ledger.recipients(slug, state, limit or None))
            for state in (UNKNOWN, FAILED)
        }
    recipients = sum(counts.values()) - counts[SKIPPED]
    if as_json:
        document: dict[str, Any] = {
            "issue": slug,
            "complete": complete,
            "recipients": recipients,
            "counts": counts,
            "sent_by": by_backend,
        }
        for state, rows in problems.items():
            document[state] = [{"email": email, "error": error} for email, error in rows]
        _print_json(document)
        return
    verdict = "complete" if complete else "not complete"
    info(f"{slug}: {counts[SENT]:,} of {recipients:,} recipients sent — {verdict}")
    if set(by_backend) - {"unrecorded"}:
        sent_by = ", ".join(f"{name} {n:,}" for name, n in by_backend.items())
        rehearsed = " (the outbox is a rehearsal: a real send reaches them again)"
        info(f"  sent by  {sent_by}{rehearsed if 'outbox' in by_backend else ''}")
    width = max(len(f"{n:,}") for n in counts.values())
    for state in STATES:
        info(f"  {state:<9}{counts[state]:>{width},}")
    headings = {
        UNKNOWN: "unknown (the request may have gone out; resent only with "
        f"`newsletter send {slug} --resend-unknown`):",
        FAILED: "failed (refused by the delivery service; a rerun of send retries them):",
    }
    for state, rows in problems.items():
        if not rows:
            continue
        info(headings[state])
        for email, error in rows:
            info(f"  {email}: {error or 'no error recorded'}")
        if len(rows) < counts[state]:
            info(f"  … and {counts[state] - len(rows):,} more (--limit 0 lists them all)")


def _print_json(document: Any) -> None:
    import json

    info(json.dumps(document, indent=2, ensure_ascii=False))
