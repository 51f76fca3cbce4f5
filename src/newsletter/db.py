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

BUSY_TIMEOUT_MS = 30_000
# Bounded so memory stays flat as the list grows (the send benchmark checks RSS).
CACHE_SIZE_KIB = 16_384

# Named, ordered and append-only: a released migration is never edited, only followed.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "001_subscribers",
        (
            # AUTOINCREMENT: a removed subscriber's id is never reused, so ledger rows that
            # outlive their subscriber can never be mistaken for someone else's.
            """
            CREATE TABLE subscribers (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                email TEXT NOT NULL,
                email_key TEXT NOT NULL UNIQUE,
                name TEXT,
                first_name TEXT,
                fields TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
                status_reason TEXT,
                source TEXT,
                created TEXT NOT NULL,
                updated TEXT NOT NULL
            )
            """,
            "CREATE INDEX subscribers_status ON subscribers (status)",
        ),
    ),
    (
        "002_ledger",
        (
            """
            CREATE TABLE ledger_issues (
                id INTEGER PRIMARY KEY,
                slug TEXT NOT NULL UNIQUE,
                prepared TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE batches (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                issue_id INTEGER NOT NULL REFERENCES ledger_issues (id),
                state TEXT NOT NULL
                    CHECK (state IN ('sending', 'sent', 'failed', 'unknown', 'released')),
                attempt INTEGER NOT NULL,
                size INTEGER NOT NULL,
                created TEXT NOT NULL,
                finished TEXT,
                message_id TEXT,
                error TEXT
            )
            """,
            "CREATE INDEX batches_issue ON batches (issue_id, state)",
            # email_key is copied from the subscriber so that the same address can never be
            # in one issue's ledger twice, even if it was removed and added again since.
            # A claimed row is `batched`: its state is then its batch's, so the outcome of a
            # request is written once per batch, not once per recipient.
            """
            CREATE TABLE ledger (
                id INTEGER PRIMARY KEY,
                issue_id INTEGER NOT NULL REFERENCES ledger_issues (id),
                subscriber_id INTEGER NOT NULL,
                email_key TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'batched', 'skipped')),
                batch_id INTEGER REFERENCES batches (id),
                attempts INTEGER NOT NULL DEFAULT 0,
                UNIQUE (issue_id, email_key)
            )
            """,
            "CREATE INDEX ledger_claim ON ledger (issue_id, state, subscriber_id)",
            "CREATE INDEX ledger_batch ON ledger (batch_id, state)",
        ),
    ),
    (
        "003_schedules",
        (
            """
            CREATE TABLE schedules (
                issue TEXT PRIMARY KEY,
                send_at_utc TEXT NOT NULL,
                tz TEXT NOT NULL,
                created TEXT NOT NULL
            )
            """,
        ),
    ),
    (
        "004_schedule_sendgrid",
        (
            # IF NOT EXISTS: workspaces scheduled before this migration got them from schedule.py.
            # sendgrid_batches: an issue scheduled through SendGrid, its batch id once created
            # and the ledger batches sent under it (after..through), so `cancel` puts back
            # exactly those. schedule_reports: a too-late issue is reported once.
            """
            CREATE TABLE IF NOT EXISTS sendgrid_batches (
                issue TEXT PRIMARY KEY,
                batch_id TEXT,
                send_at INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('planned', 'submitted', 'cancelled')),
                after_ledger_batch INTEGER,
                through_ledger_batch INTEGER,
                updated TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS schedule_reports (
                issue TEXT PRIMARY KEY,
                too_late_reported TEXT NOT NULL
            )
            """,
        ),
    ),
    (
        "005_batch_backend",
        (
            # Which backend sent a batch: a rehearsal (the outbox) must not count as the
            # issue going out when a real backend sends it afterwards. NULL: before 005.
            "ALTER TABLE batches ADD COLUMN backend TEXT",
        ),
    ),
    (
        "006_schedule_failures",
        (
            # A due issue whose send failed: reported by the first cron run that met the
            # error, tried again quietly by the next ones, shown by `schedule --list`.
            """
            CREATE TABLE schedule_failures (
                issue TEXT PRIMARY KEY,
                error TEXT NOT NULL,
                first_failed TEXT NOT NULL,
                last_failed TEXT NOT NULL
            )
            """,
        ),
    ),
)


def utc_now() -> str:
    """The one clock of the database layer: UTC, ISO 8601, seconds precision."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def open_database(path: Path, *, scratch_copy: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the workspace database and bring its schema up to date.

    A database the user may read but not write (a read-only mount, a colleague's file) is
    opened read-only, so commands that only read work; a write then fails with one line.
    `scratch_copy`: a caller that writes only to roll back (a dry run) gets an in-memory
    copy of such a database instead.
    """
    if path.is_file() and not _writable(path):
        conn = _open_read_only(path)
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
        _check_integrity(conn, path)
        migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(exc, path) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _writable(path: Path) -> bool:
    # WAL needs to create its -wal and -shm files beside the database.
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path) -> sqlite3.Connection:
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
        )
    except sqlite3.Error as exc:
        raise _unusable(exc, path) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
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
    if "malformed" in text or "not a database" in text:
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
