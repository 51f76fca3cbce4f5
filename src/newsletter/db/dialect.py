"""Pieces of SQL the two engines spell differently (the CSV import's own: audience.csv_sql)."""

from __future__ import annotations

from newsletter.db.postgres import PgConnection
from newsletter.db.transactions import Connection


def json_keys(conn: Connection, column: str) -> str:
    """A table expression of the keys of the JSON object in `column`, as `key`."""
    if isinstance(conn, PgConnection):
        return f"jsonb_object_keys({column}::jsonb) AS j (key)"
    return f"json_each({column}) AS j"
