"""The few pieces of SQL the two engines spell differently, each made in one place."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from newsletter.db.postgres import PgConnection
from newsletter.db.transactions import Connection


def among(conn: Connection, column: str, values: Iterable[Any]) -> tuple[str, Any]:
    """`column` is one of `values`, as SQL with one placeholder and the value to bind to it
    (any number of values, without a placeholder each)."""
    if isinstance(conn, PgConnection):
        return f"{column} = ANY(?)", list(values)
    return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))


def json_keys(conn: Connection, column: str) -> str:
    """A table expression of the keys of the JSON object in `column`, as `key`."""
    if isinstance(conn, PgConnection):
        return f"jsonb_object_keys({column}::jsonb) AS j (key)"
    return f"json_each({column}) AS j"


def temp_keys_table(conn: Connection) -> str:
    """A temporary table of (key, line): SQLite stores it best without rowids."""
    rowid = "" if isinstance(conn, PgConnection) else " WITHOUT ROWID"
    return (
        "CREATE TEMP TABLE IF NOT EXISTS import_keys "
        f"(key TEXT PRIMARY KEY, line INTEGER NOT NULL){rowid}"
    )
