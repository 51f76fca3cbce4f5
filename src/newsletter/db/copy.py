"""Moving a workspace's database to another engine: `newsletter db copy`.

Every table, ids kept, into an empty database, in one transaction on the target: the
target is migrated, filled, its id counters moved past the copied ids and its row counts
checked against the source's before the commit, so a copy that fails leaves it as it was.
The rows stream (COPY into PostgreSQL, chunked inserts into SQLite; a server-side cursor
out of PostgreSQL), so memory stays flat whatever the size of the list.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.db import open_database
from newsletter.db.postgres import PgConnection
from newsletter.db.schema import migrate
from newsletter.db.target import PostgresTarget, Target
from newsletter.db.transactions import Connection, transaction
from newsletter.errors import UserError

# Every table of the migrations, parents before the tables that refer to them.
TABLES = (
    "subscribers",
    "ledger_issues",
    "batches",
    "ledger",
    "schedules",
    "sendgrid_batches",
    "schedule_reports",
    "schedule_failures",
    "consent",
    "events",
)
# Tables whose ids come from a counter; AUTOINCREMENT ones never give an id twice, even
# after the row with the highest id was deleted, so their counter is carried over too.
ID_TABLES = ("subscribers", "ledger_issues", "batches", "ledger", "consent", "events")
AUTOINCREMENT = ("subscribers", "batches")
CHUNK = 5_000


@dataclass(frozen=True)
class CopyReport:
    source: str
    target: str
    counts: dict[str, int]
    seconds: float


def copy_database(source: Target, target: Target) -> CopyReport:
    """Copy every row of `source` into `target`, which must hold no data; both are migrated."""
    if _same(source, target):
        raise UserError(
            "--from and --to name the same database",
            where=str(target),
            fix="give --to a new, empty database",
        )
    if isinstance(source, Path) and not source.is_file():
        raise UserError(
            "there is no SQLite database to copy",
            where=source,
            fix="give --from the workspace's database file (sqlite:///newsletter.db)",
        )
    started = time.monotonic()
    src = open_database(source)
    try:
        with _fresh_file(target), _opened(target) as dst:
            counts = _copy(src, dst, target)
    finally:
        src.close()
    return CopyReport(str(source), str(target), counts, time.monotonic() - started)


def _copy(src: Connection, dst: Connection, target: Target) -> dict[str, int]:
    with _snapshot(src), transaction(dst):
        # Inside the copy's transaction (as savepoints): a failed copy leaves no schema either.
        migrate(dst)
        _refuse_data(dst, target)
        counts: dict[str, int] = {}
        for table in TABLES:
            (expected,) = src.execute(f"SELECT count(*) FROM {table}").fetchone()
            columns = _columns(src, table)
            written = _write(dst, table, columns, _rows(src, table, columns))
            (landed,) = dst.execute(f"SELECT count(*) FROM {table}").fetchone()
            if not expected == written == landed:
                raise UserError(
                    f"the copy of {table} has {landed:,} rows, the source {expected:,}",
                    where=str(target),
                    fix="nothing was copied; run the copy again while nothing writes to the source",
                )
            counts[table] = int(landed)
        _carry_counters(src, dst)
    return counts


def _refuse_data(conn: Connection, target: Target) -> None:
    held = [table for table in TABLES if conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()]
    if held:
        raise UserError(
            f"the target database already holds data (in {', '.join(held)})",
            where=str(target),
            fix="copy into a new file (--to sqlite:///NEW.db)"
            if isinstance(target, Path)
            else "copy into a new, empty database (createdb -O USER NAME), "
            "or drop this one's tables first",
        )


def _columns(conn: Connection, table: str) -> list[str]:
    if isinstance(conn, PgConnection):
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    else:
        rows = [(row[1],) for row in conn.execute(f"PRAGMA table_info({table})")]
    return [str(name) for (name,) in rows]


def _rows(conn: Connection, table: str, columns: Sequence[str]) -> Iterator[Sequence[Any]]:
    query = f"SELECT {', '.join(columns)} FROM {table} ORDER BY {columns[0]}"
    if not isinstance(conn, PgConnection):
        yield from conn.execute(query)
        return
    # A server-side cursor: the rows arrive in chunks, not all at once.
    with conn.raw.cursor(name=f"copy_{table}") as cursor:
        cursor.itersize = CHUNK
        cursor.execute(query)
        yield from cursor


def _write(
    conn: Connection, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]
) -> int:
    names = ", ".join(columns)
    written = 0
    if isinstance(conn, PgConnection):
        import psycopg

        try:
            statement = f"COPY {table} ({names}) FROM STDIN"
            with conn.raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
                    written += 1
        except psycopg.Error as exc:
            raise conn.failed(exc) from None
        return written
    insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
    while chunk := list(itertools.islice(rows, CHUNK)):
        conn.executemany(insert, chunk)
        written += len(chunk)
    return written


def _carry_counters(src: Connection, dst: Connection) -> None:
    """Give the target's id counters the source's, so no copied id is ever given again."""
    for table in ID_TABLES:
        counter = _counter(src, table)
        if isinstance(dst, PgConnection):
            dst.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"greatest(max(id), ?)) FROM {table} HAVING greatest(max(id), ?) > 0",
                (counter, counter),
            )
        elif table in AUTOINCREMENT and counter:
            # SQLite has made the row when the copy inserted any; it may lack one otherwise.
            dst.execute("DELETE FROM sqlite_sequence WHERE name = ?", (table,))
            dst.execute(
                "INSERT INTO sqlite_sequence (name, seq) "
                "SELECT ?, max(coalesce(max(id), 0), ?) FROM " + table,
                (table, counter),
            )


def _counter(conn: Connection, table: str) -> int:
    """The highest id the source has ever given in `table` (0: none, or not tracked)."""
    if isinstance(conn, PgConnection):
        row = conn.execute(
            f"SELECT pg_sequence_last_value(pg_get_serial_sequence('{table}', 'id'))"
        ).fetchone()
    else:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@contextmanager
def _snapshot(conn: Connection) -> Iterator[None]:
    """One read transaction over the whole copy: every table as of the same moment."""
    if isinstance(conn, PgConnection):
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    else:
        conn.execute("BEGIN")
    try:
        yield
    finally:
        with suppress(Exception):
            conn.execute("ROLLBACK")


@contextmanager
def _opened(target: Target) -> Iterator[Connection]:
    conn = open_database(target, migrate_now=False)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def _fresh_file(target: Target) -> Iterator[None]:
    """A SQLite file this copy creates is removed again if the copy fails."""
    if not isinstance(target, Path) or target.exists():
        yield
        return
    try:
        yield
    except BaseException:
        for leftover in (target, *(target.with_name(target.name + s) for s in ("-wal", "-shm"))):
            with suppress(OSError):
                leftover.unlink()
        raise


def _same(one: Target, other: Target) -> bool:
    if isinstance(one, PostgresTarget) and isinstance(other, PostgresTarget):
        return one.shown == other.shown
    if isinstance(one, Path) and isinstance(other, Path):
        return one.resolve() == other.resolve()
    return False


def row_counts(conn: Connection) -> dict[str, int]:
    """Rows per table (for `db status`), in a database whose schema is up to date."""
    counts: dict[str, int] = {}
    for table in TABLES:
        (counts[table],) = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return counts
