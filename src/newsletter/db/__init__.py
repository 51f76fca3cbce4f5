"""The workspace database: subscribers, the send ledger, schedules, events and consent.

SQLite (one file in the workspace) by default; PostgreSQL when DATABASE_URL names a server,
for a team whose web endpoint, cron and editors work on several machines. `open_database`
is the only place that opens it, and brings its schema up to date; the queries are written
once, in SQL both engines run (see `db.postgres`).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from newsletter.db import postgres, sqlite
from newsletter.db.errors import DatabaseDamaged, ReadOnlyDatabase, engine_errors, explain
from newsletter.db.postgres import PgConnection
from newsletter.db.schema import applied_migrations, migrate, pending_migrations
from newsletter.db.sqlite import BUSY_TIMEOUT_MS
from newsletter.db.target import PostgresTarget, Target
from newsletter.db.transactions import (
    Connection,
    deferred_sync,
    is_postgres,
    rolled_back,
    transaction,
    utc_now,
)
from newsletter.errors import UserError

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Connection",
    "DatabaseDamaged",
    "PgConnection",
    "PostgresTarget",
    "ReadOnlyDatabase",
    "Target",
    "applied_migrations",
    "connect_checked",
    "deferred_sync",
    "engine_errors",
    "exists",
    "explain",
    "is_postgres",
    "migrate",
    "open_database",
    "rolled_back",
    "transaction",
    "utc_now",
]


def open_database(
    target: Target, *, scratch_copy: bool = False, scan: bool = True, migrate_now: bool = True
) -> Connection:
    """Open (creating if needed) the workspace database and bring its schema up to date.

    A SQLite database the user may read but not write (a read-only mount, a colleague's
    file) is opened read-only, so commands that only read work; a write then fails with one
    line. `scratch_copy`: a caller that writes only to roll back (a dry run) gets an
    in-memory copy of such a database instead. `scan` off skips SQLite's integrity scan,
    whose time grows with the file: for reports that only read.
    """
    if isinstance(target, PostgresTarget):
        conn = postgres.connect(target, lock_timeout_ms=BUSY_TIMEOUT_MS)
        try:
            if migrate_now:
                migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn
    path = target
    if path.is_file() and not sqlite.writable(path):
        read_only = _open_read_only(path, scan=scan)
        if not scratch_copy:
            return read_only
        try:
            return sqlite.scratch_copy(read_only)
        finally:
            read_only.close()
    sqlite.create_file(path)
    try:
        lite = sqlite.connect(path)
    except sqlite3.Error as exc:
        raise sqlite.unusable(exc, path) from None
    try:
        if scan:
            sqlite.check_integrity(lite, path)
        if migrate_now:
            migrate(lite)
    except sqlite3.DatabaseError as exc:
        lite.close()
        raise sqlite.unusable(exc, path) from None
    except BaseException:
        lite.close()
        raise
    return lite


def connect_checked(target: Target, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> Connection:
    """Another connection to a database `open_database` has already checked and migrated.

    For long-running servers: one per worker thread, without the integrity scan each time.
    """
    if isinstance(target, PostgresTarget):
        return postgres.connect(target, lock_timeout_ms=busy_timeout_ms)
    if target.is_file() and not sqlite.writable(target):
        return _open_read_only(target, scan=False)
    try:
        return sqlite.connect(target, busy_timeout_ms=busy_timeout_ms)
    except sqlite3.Error as exc:
        raise sqlite.unusable(exc, target) from None


def exists(target: Target) -> bool:
    """Whether there is a database to read (a server is taken to have one)."""
    return isinstance(target, PostgresTarget) or target.exists()


def _open_read_only(path: Path, *, scan: bool = True) -> sqlite3.Connection:
    try:
        conn = sqlite.connect_read_only(path)
    except sqlite3.Error as exc:
        raise sqlite.unusable(exc, path) from None
    try:
        if scan:
            sqlite.check_integrity(conn, path)
        pending = pending_migrations(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise sqlite.unusable(exc, path) from None
    except BaseException:
        conn.close()
        raise
    if pending:
        conn.close()
        raise UserError(
            f"the database is read-only and needs the upgrade {pending[0]}",
            where=path,
            fix="run any newsletter command once where the database is writable",
        )
    return conn
