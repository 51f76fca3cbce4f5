"""Transactions on either engine: the write lock up front, savepoints when nested."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeGuard

from newsletter.db.errors import ReadOnlyDatabase
from newsletter.db.postgres import LOCK_CLASS, WRITERS, PgConnection
from newsletter.db.sqlite import file_of
from newsletter.errors import LockBusy

Connection = sqlite3.Connection | PgConnection


def utc_now() -> str:
    """The one clock of the database layer: UTC, ISO 8601, seconds precision."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def is_postgres(conn: Connection) -> TypeGuard[PgConnection]:
    return isinstance(conn, PgConnection)


@contextmanager
def transaction(conn: Connection, *, concurrent: bool = False) -> Iterator[Connection]:
    """BEGIN ... COMMIT, or ROLLBACK on any exception; nests as a savepoint.

    The write lock is taken up front (SQLite's BEGIN IMMEDIATE; on PostgreSQL a transaction
    advisory lock), so two processes never both read and then fail to upgrade, and every
    read-then-write in the code sees the database as nobody else is changing it; the busy
    timeout makes the second one wait instead. `concurrent`: on PostgreSQL, rely on row
    locks instead (ledger claims and marks, which must not wait for each other across
    hosts); SQLite has one writer at a time whatever is asked.
    """
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        conn.execute("RELEASE nested")
        return
    _begin(conn, concurrent=concurrent)
    try:
        yield conn
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
            raise ReadOnlyDatabase(file_of(conn)) from None  # type: ignore[arg-type]
        raise
    conn.execute("COMMIT")


def _begin(conn: Connection, *, concurrent: bool = False) -> None:
    if isinstance(conn, PgConnection):
        # One round trip: the setting holds for this transaction only (see deferred_sync).
        conn.execute("BEGIN; SET LOCAL synchronous_commit = off" if conn.defer_sync else "BEGIN")
        if concurrent:
            return
        try:
            conn.execute("SELECT pg_advisory_xact_lock(?, ?)", (LOCK_CLASS, WRITERS))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        file = file_of(conn)
        if "readonly" in str(exc):
            raise ReadOnlyDatabase(file) from None
        if "locked" not in str(exc) and "busy" not in str(exc):
            raise
        (waited,) = conn.execute("PRAGMA busy_timeout").fetchone()
        raise LockBusy(
            f"the database stayed busy for {waited / 1000:g} s "
            "(another newsletter run is writing to it)",
            where=file,
            fix="let that run finish, then run the command again",
        ) from None


@contextmanager
def rolled_back(conn: Connection) -> Iterator[None]:
    """Run calls for real inside one transaction, then undo them all (previews, dry runs)."""
    _begin(conn)
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


@contextmanager
def deferred_sync(conn: Connection) -> Iterator[None]:
    """Commit without waiting for the disk, for writes that are safe to lose in a power cut.

    The frames are flushed with the next durable commit; if the machine dies first, the
    database is as it was before the write (neither engine leaves it half-written).
    """
    if conn.in_transaction:
        yield  # the enclosing transaction decides
        return
    if isinstance(conn, PgConnection):
        # The transactions begun in the block set it for themselves (SET LOCAL, with their
        # BEGIN): no round trips to set it and reset it around them.
        conn.defer_sync = True
        try:
            yield
        finally:
            conn.defer_sync = False
        return
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = FULL")
