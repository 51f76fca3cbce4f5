"""Bringing a database's schema up to date: the named, ordered migrations, on either engine."""

from __future__ import annotations

from newsletter.db.postgres import PgConnection
from newsletter.db.sqlite import has_migrations_table
from newsletter.db.transactions import Connection, transaction, utc_now
from newsletter.errors import UserError
from newsletter.migrations import MIGRATIONS, statements_for

CREATE_LOG = "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)"


def applied_migrations(conn: Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()
    return [str(name) for (name,) in rows]


def _has_log(conn: Connection) -> bool:
    if isinstance(conn, PgConnection):
        (found,) = conn.execute("SELECT to_regclass('_migrations') IS NOT NULL").fetchone()
        return bool(found)
    return has_migrations_table(conn)


def _refuse_newer(conn: Connection) -> None:
    known = {name for name, _ in MIGRATIONS}
    newer = [name for name in applied_migrations(conn) if name not in known]
    if newer:
        raise UserError(
            f"the database was updated by a newer version of newsletter (migration {newer[-1]})",
            fix="upgrade newsletter (pip install -U newsletter)",
        )


def pending_migrations(conn: Connection) -> list[str]:
    if not _has_log(conn):
        return [name for name, _ in MIGRATIONS]
    _refuse_newer(conn)
    applied = set(applied_migrations(conn))
    return [name for name, _ in MIGRATIONS if name not in applied]


def migrate(conn: Connection) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names.

    A migration that fails is rolled back whole (both engines change their schema inside a
    transaction), so a database is never left half-migrated.
    """
    dialect = "postgresql" if isinstance(conn, PgConnection) else "sqlite"
    if not _has_log(conn):
        with transaction(conn):
            conn.execute(CREATE_LOG)
    _refuse_newer(conn)
    applied = set(applied_migrations(conn))
    done: list[str] = []
    for name, statements in MIGRATIONS:
        if name in applied:
            continue
        with transaction(conn):
            # Checked inside the write lock: two processes opening at once apply it once.
            if conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (name,)).fetchone():
                continue
            for statement in statements_for(name, statements, dialect):
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations (name, applied) VALUES (?, ?)", (name, utc_now()))
        done.append(name)
    return done
