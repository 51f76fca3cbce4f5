"""What the CSV import writes differently on each engine (see `csv_import`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from newsletter.db import is_postgres

if TYPE_CHECKING:
    from newsletter.db import Connection


@dataclass(frozen=True)
class Dialect:
    """What the import writes differently per engine: the session's table of keys seen,
    the list table (qualified on SQLite, where a temp table could shadow it), and how a
    chunk of keys is passed (a JSON text on SQLite, an array on PostgreSQL)."""

    keys: str
    subscribers: str
    rowid: str
    in_list: str
    key_list: Callable[[list[str]], Any]


_SQLITE_SQL = Dialect(
    keys="temp.import_keys",
    subscribers="main.subscribers",
    rowid=" WITHOUT ROWID",
    in_list="IN (SELECT value FROM json_each(?))",
    key_list=json.dumps,
)
_PG_SQL = Dialect(
    keys="pg_temp.import_keys",
    subscribers="subscribers",
    rowid="",
    in_list="= ANY(?)",
    key_list=list,
)
SUBSCRIBER_COLUMNS = (
    "email",
    "email_key",
    "name",
    "first_name",
    "fields",
    "status",
    "status_reason",
    "source",
    "created",
    "updated",
)
_ARRAY_TYPES = {"line": "bigint[]"}  # every other column the import writes is text


def dialect_of(conn: Connection) -> Dialect:
    return _PG_SQL if is_postgres(conn) else _SQLITE_SQL


def insert_rows(
    conn: Connection, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]
) -> None:
    """Insert `rows`: on PostgreSQL as one statement of arrays (psycopg's executemany runs
    one statement a row, twice the server's time), on SQLite with executemany."""
    if not rows:
        return
    names = ", ".join(columns)
    if not is_postgres(conn):
        marks = ", ".join("?" * len(columns))
        conn.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)
        return
    arrays = ", ".join(f"?::{_ARRAY_TYPES.get(name, 'text[]')}" for name in columns)
    conn.execute(
        f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})",
        [list(values) for values in zip(*rows, strict=True)],
    )


ANALYZE_AFTER = 10_000  # rows added by one import


def refresh_statistics(conn: Connection, added: int) -> None:
    """PostgreSQL plans from statistics its autovacuum renews only later: a send right
    after a big import would be planned for the list as it was before."""
    if added >= ANALYZE_AFTER and is_postgres(conn):
        conn.execute("ANALYZE subscribers")
