"""The workspace database itself: `db migrate`, `db status`, `db copy`."""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings
from newsletter.errors import UserError
from newsletter.migrations import MIGRATIONS

if TYPE_CHECKING:
    from newsletter.db import Target

db_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The workspace database (SQLite, or PostgreSQL through DATABASE_URL): "
    "migrate, status, copy.\n\n"
    "Example:  newsletter db status",
)
app.add_typer(db_app, name="db")


@db_app.command()
def migrate(ctx: typer.Context) -> None:
    """Bring the database's schema up to date, and say which migrations were applied.

    Each migration is applied in its own transaction: one that fails leaves nothing
    half-done, and a rerun starts from it. Every command also does this when it opens the
    database; run it yourself as the database's owner when the everyday user may not
    change the schema.

    Example:

        newsletter db migrate
    """
    from newsletter.db import applied_migrations, migrate, open_database
    from newsletter.db.schema import pending_migrations

    target = settings(ctx).database
    conn = open_database(target, migrate_now=False)
    try:
        pending = pending_migrations(conn)
        before = [name for name, _ in MIGRATIONS if name not in pending]
        try:
            done = migrate(conn)
        except BaseException:
            # Those before the failing one are committed: say so, then the error.
            with suppress(Exception):  # a connection lost in the failure: the error says it
                _say_applied(target, [n for n in applied_migrations(conn) if n not in before])
            raise
    finally:
        conn.close()
    if done:
        _say_applied(target, done)
    else:
        info(f"{target}: up to date ({len(before)} migrations applied)")


def _say_applied(target: Target, names: list[str]) -> None:
    if not names:
        return
    info(f"{target}: applied {len(names)} migration{'s' if len(names) != 1 else ''}")
    for name in names:
        info(f"  {name}")


@db_app.command()
def status(ctx: typer.Context) -> None:
    """Which database the workspace uses, its schema, and the rows in each table.

    The PostgreSQL URL is shown without its password. Nothing is changed: a database
    whose schema is behind is reported, not migrated.

    Example:

        newsletter db status
    """
    from newsletter.db import PostgresTarget, exists, open_database
    from newsletter.db.copy import row_counts
    from newsletter.db.schema import pending_migrations

    target = settings(ctx).database
    engine = "PostgreSQL" if isinstance(target, PostgresTarget) else "SQLite"
    if not exists(target):
        info(f"database   {target} ({engine})")
        info("schema     none yet (the first command that needs it creates it)")
        return
    conn = open_database(target, migrate_now=False, scan=False)  # a failure: one line
    try:
        pending = pending_migrations(conn)
        counts = row_counts(conn) if not pending else {}
    finally:
        conn.close()
    info(f"database   {target} ({engine})")
    applied = len(MIGRATIONS) - len(pending)
    if pending:
        info(f"schema     {applied} of {len(MIGRATIONS)} migrations applied")
        info(f"pending    {', '.join(pending)} (run `newsletter db migrate`)")
        return
    info(f"schema     up to date ({applied} migrations, the last {MIGRATIONS[-1][0]})")
    width = max(len(f"{n:,}") for n in counts.values())
    for table, count in counts.items():
        info(f"  {table:<18}{count:>{width},}")


@db_app.command()
def copy(
    ctx: typer.Context,
    source: str | None = typer.Option(
        None,
        "--from",
        metavar="URL",
        help="The database to copy: sqlite:///PATH (relative to the workspace) or "
        "postgresql://...; default: the workspace's SQLite file ([delivery] database).",
    ),
    to: str | None = typer.Option(
        None,
        "--to",
        metavar="URL",
        help="An empty database to copy into; default: DATABASE_URL. Prefer DATABASE_URL in "
        ".env to a password on the command line, where the shell's history keeps it.",
    ),
) -> None:
    """Copy every table of the workspace database into another, empty one: SQLite to
    PostgreSQL to share the list between machines, or back.

    Ids are kept and the row counts of every table are checked before the copy commits, in
    one transaction on the target: a copy that fails leaves the target as it was. Stop the
    cron entry and `newsletter serve` first, so nothing writes to the source meanwhile.

    Example:

        newsletter db copy --to postgresql://editor@db.example.org/news
    """
    from newsletter.db.copy import copy_database

    workspace = settings(ctx)
    origin = _target(ctx, source, "--from") if source else workspace.database_path
    if to:
        destination = _target(ctx, to, "--to")
    elif workspace.secrets.database_url is not None:
        destination = workspace.database
    else:
        raise UserError(
            "there is no database to copy into",
            where="--to",
            fix="give --to postgresql://USER:PASSWORD@HOST:5432/DATABASE, "
            "or set DATABASE_URL in .env",
        )
    report = copy_database(origin, destination)
    info(f"copied {report.source} to {report.target} in {report.seconds:.1f} s")
    width = max(len(f"{n:,}") for n in report.counts.values())
    for table, count in report.counts.items():
        info(f"  {table:<18}{count:>{width},}")
    if str(destination) != str(workspace.database):
        info(f"the workspace still uses {workspace.database}: set DATABASE_URL to use the copy")


def _target(ctx: typer.Context, url: str, option: str) -> Target:
    from pathlib import Path

    from newsletter.db.target import parse_target

    workspace = settings(ctx).workspace
    if "://" not in url:  # a file's path, as a user types it: a SQLite database
        return workspace / Path(url).expanduser()
    return parse_target(url, workspace=workspace, where=option, name=option)
