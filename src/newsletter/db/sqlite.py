"""The SQLite engine: the embedded default, one file beside the workspace.

WAL, foreign keys, a busy timeout for concurrent cron runs, an integrity scan on open, and
read-only opening of a database the user may read but not write.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from newsletter.db.errors import DatabaseDamaged
from newsletter.errors import UserError

BUSY_TIMEOUT_MS = 30_000
# Bounded so memory stays flat as the list grows (the send benchmark checks RSS).
CACHE_SIZE_KIB = 16_384


def create_file(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The list is personal data: readable by its owner only (SQLite gives the -wal and
        # -shm files the database file's permissions).
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    except OSError as exc:
        raise UserError(
            f"cannot create the database ({exc.strerror})",
            where=path,
            fix="check the directory's permissions or the [delivery] database setting",
        ) from None


def connect(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (see `db.transaction`).
    # check_same_thread off: a server closes every worker's connection at shutdown.
    conn = sqlite3.connect(
        path, isolation_level=None, timeout=busy_timeout_ms / 1000, check_same_thread=False
    )
    try:
        configure(conn, busy_timeout_ms)
    except BaseException:
        conn.close()
        raise
    return conn


def writable(path: Path) -> bool:
    # WAL needs to create its -wal and -shm files beside the database.
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def connect_read_only(path: Path) -> sqlite3.Connection:
    # Without a -shm file beside it, SQLite can read a WAL database read-only only as
    # immutable; nobody can be writing it then, since nobody may create that file.
    shm = path.with_name(path.name + "-shm")
    flags = "mode=ro" if shm.exists() else "mode=ro&immutable=1"
    conn = sqlite3.connect(
        f"{path.resolve().as_uri()}?{flags}",
        uri=True,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,  # a server closes its workers' connections itself
    )
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def scratch_copy(conn: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory copy, for a caller that writes only to roll back (a dry run)."""
    copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    conn.backup(copy)
    copy.execute("PRAGMA foreign_keys = ON")
    return copy


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged file before anything reads partial data from it or writes to it."""
    (first,) = conn.execute("PRAGMA quick_check(1)").fetchone()
    if first != "ok":
        raise DatabaseDamaged(path, str(first))


def unusable(exc: sqlite3.Error, path: Path) -> UserError:
    text = str(exc)
    if "malformed" in text:
        return DatabaseDamaged(path, text)
    return UserError(
        f"cannot use the database ({text})",
        where=path,
        fix="check that the file is the workspace's SQLite database "
        "(setting [delivery] database in newsletter.toml)",
    )


def configure(conn: sqlite3.Connection, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
    conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a batch claimed as `sending` must survive a power cut before its request leaves.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
    conn.execute("PRAGMA journal_size_limit = 67108864")


def file_of(conn: sqlite3.Connection) -> str:
    (_, _, file) = conn.execute("PRAGMA database_list").fetchone()
    return str(file)


def has_migrations_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone()
    return row is not None
