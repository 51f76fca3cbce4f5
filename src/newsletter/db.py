"""The workspace database: one SQLite file holding subscribers, the send ledger and schedules.

`open_database` is the only place that opens it: WAL, foreign keys, a busy timeout for
concurrent cron runs, and the named, ordered migrations below applied on open.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from newsletter.errors import LockBusy, UserError
from newsletter.migrations import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000
# Bounded so memory stays flat as the list grows (the send benchmark checks RSS).
CACHE_SIZE_KIB = 16_384


def utc_now() -> str:
    """The one clock of the database layer: UTC, ISO 8601, seconds precision."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def open_database(
    path: Path, *, scratch_copy: bool = False, scan: bool = True
) -> sqlite3.Connection:
    """Open (creating if needed) the workspace database and bring its schema up to date.

    A database the user may read but not write (a read-only mount, a colleague's file) is
    opened read-only, so commands that only read work; a write then fails with one line.
    `scratch_copy`: a caller that writes only to roll back (a dry run) gets an in-memory
    copy of such a database instead. `scan` off skips the integrity scan, whose time grows
    with the file: for reports that only read (damage still shows as an error when read).
    """
    if path.is_file() and not _writable(path):
        conn = _open_read_only(path, scan=scan)
        if not scratch_copy:
            return conn
        copy = sqlite3.connect(":memory:", isolation_level=None)
        try:
            conn.backup(copy)
        finally:
            conn.close()
        copy.execute("PRAGMA foreign_keys = ON")
        return copy
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
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (see `transaction`).
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        _configure(conn)
        if scan:
            _check_integrity(conn, path)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(exc, path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def connect_checked(path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> sqlite3.Connection:
    """Another connection to a database `open_database` has already checked and migrated.

    For long-running servers: one per worker thread, without the integrity scan each time.
    """
    if path.is_file() and not _writable(path):
        return _open_read_only(path)
    try:
        # check_same_thread off: the server closes every worker's connection at shutdown.
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            timeout=busy_timeout_ms / 1000,
            check_same_thread=False,
        )
        _configure(conn)
        conn.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
    except sqlite3.Error as exc:
        raise _unusable(exc, path) from None
    return conn


def _writable(path: Path) -> bool:
    # WAL needs to create its -wal and -shm files beside the database.
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path, *, scan: bool = True) -> sqlite3.Connection:
    # Without a -shm file beside it, SQLite can read a WAL database read-only only as
    # immutable; nobody can be writing it then, since nobody may create that file.
    shm = path.with_name(path.name + "-shm")
    flags = "mode=ro" if shm.exists() else "mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?{flags}",
            uri=True,
            isolation_level=None,
            timeout=BUSY_TIMEOUT_MS / 1000,
            check_same_thread=False,  # a server closes its workers' connections itself
        )
    except sqlite3.Error as exc:
        raise _unusable(exc, path) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        if scan:
            _check_integrity(conn, path)
        pending = _pending_migrations(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(exc, path) from None
    if pending:
        conn.close()
        raise UserError(
            f"the database is read-only and needs the upgrade {pending[0]}",
            where=path,
            fix="run any newsletter command once where the database is writable",
        )
    return conn


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a damaged file before anything reads partial data from it or writes to it."""
    (first,) = conn.execute("PRAGMA quick_check(1)").fetchone()
    if first != "ok":
        raise DatabaseDamaged(path, str(first))


def _unusable(exc: sqlite3.Error, path: Path) -> UserError:
    text = str(exc)
    if "malformed" in text:
        return DatabaseDamaged(path, text)
    return UserError(
        f"cannot use the database ({text})",
        where=path,
        fix="check that the file is the workspace's SQLite database "
        "(setting [delivery] database in newsletter.toml)",
    )


class ReadOnlyDatabase(UserError):
    def __init__(self, path: Path | str | None = None) -> None:
        super().__init__(
            "the workspace database is read-only and this command writes to it",
            where=path,
            fix="run it where the database and its folder are writable "
            "(commands that only read, such as `status`, work as they are)",
        )


def explain(error: sqlite3.Error) -> UserError | None:
    """The one-line form of a database failure the core did not expect, where one is known."""
    text = str(error)
    if "readonly" in text:
        return ReadOnlyDatabase()
    # A damaged record can pass quick_check and only fail when its text is read.
    if "malformed" in text or "not a database" in text or "Could not decode" in text:
        return DatabaseDamaged(None, text)
    return None


class DatabaseDamaged(UserError):
    def __init__(self, path: Path | None, detail: str) -> None:
        name = path.name if path else "newsletter.db"
        detail = " ".join(detail.replace("*** in database main ***", "").split())
        super().__init__(
            f"the workspace database is damaged ({detail[:120]})",
            where=path,
            fix=f"restore {name} from a backup, or salvage it with "
            f"`sqlite3 {name} .recover | sqlite3 recovered.db` and point "
            "[delivery] database at the result",
        )


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a batch claimed as `sending` must survive a power cut before its request leaves.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_SIZE_KIB}")
    conn.execute("PRAGMA journal_size_limit = 67108864")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception; nests as a savepoint.

    IMMEDIATE takes the write lock up front, so two processes never both read and then
    fail to upgrade; the busy timeout makes the second one wait instead.
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
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        (_, _, file) = conn.execute("PRAGMA database_list").fetchone()
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
    try:
        yield conn
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and "readonly" in str(exc):
            (_, _, file) = conn.execute("PRAGMA database_list").fetchone()
            raise ReadOnlyDatabase(file) from None
        raise
    conn.execute("COMMIT")


@contextmanager
def rolled_back(conn: sqlite3.Connection) -> Iterator[None]:
    """Run calls for real inside one transaction, then undo them all (previews, dry runs)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


@contextmanager
def deferred_sync(conn: sqlite3.Connection) -> Iterator[None]:
    """Commit without waiting for the disk, for writes that are safe to lose in a power cut.

    The frames are fsynced with the next FULL commit; if the machine dies first, the
    database is as it was before the write (WAL never leaves it half-written).
    """
    if conn.in_transaction:
        yield  # the enclosing transaction decides
        return
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        yield
    finally:
        conn.execute("PRAGMA synchronous = FULL")


def applied_migrations(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute("SELECT name FROM _migrations ORDER BY name").fetchall()
    return [str(name) for (name,) in rows]


def _refuse_newer(conn: sqlite3.Connection) -> None:
    known = {name for name, _ in MIGRATIONS}
    newer = [name for name in applied_migrations(conn) if name not in known]
    if newer:
        raise UserError(
            f"the database was updated by a newer version of newsletter (migration {newer[-1]})",
            fix="upgrade newsletter (pip install -U newsletter)",
        )


def _pending_migrations(conn: sqlite3.Connection) -> list[str]:
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = '_migrations'").fetchone():
        return [MIGRATIONS[0][0]]
    _refuse_newer(conn)
    applied = set(applied_migrations(conn))
    return [name for name, _ in MIGRATIONS if name not in applied]


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet applied, each in its own transaction; return their names."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied TEXT NOT NULL)"
    )
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
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO _migrations (name, applied) VALUES (?, ?)", (name, utc_now()))
        done.append(name)
    return done
