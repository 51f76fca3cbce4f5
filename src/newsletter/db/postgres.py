"""The PostgreSQL engine: a psycopg 3 connection that speaks the SQL the rest of the code writes.

The queries are written once, in the SQL both engines understand (`?` placeholders,
`ON CONFLICT`, `RETURNING`); `PgConnection` turns the placeholders into psycopg's and
offers the small part of `sqlite3.Connection` the code uses (execute, executemany,
in_transaction, close), so no query exists twice. Where the engines truly differ (row
locks, advisory locks, the schema's id columns) the callers ask `is_postgres`.

psycopg is imported only here, and only when a PostgreSQL URL is in use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from newsletter.db.target import PostgresTarget
from newsletter.errors import LockBusy, UserError

if TYPE_CHECKING:
    import psycopg

MIN_SERVER_VERSION = 130000  # PostgreSQL 13: the oldest release its developers still support
CONNECT_TIMEOUT_S = 10
URL_WHERE = "DATABASE_URL"

# Advisory lock keys (two int4 keys: a class and an object). The class is "nl" for newsletter.
LOCK_CLASS = 0x6E6C
WRITERS = 1  # every write transaction but a ledger claim's: what BEGIN IMMEDIATE is to SQLite
CRON = 2  # `send --due`: one run at a time, across hosts
SENDER_CLASS = 0x6E6D  # one key per running sender: held while it is alive
# One key per issue: every sender of it holds it shared; `send --resend`, which puts back
# what others may be sending right now, needs it alone.
ISSUE_CLASS = 0x6E6F


def issue_key(slug: str) -> int:
    """An issue's advisory lock key: the same on every host (a CRC, not Python's hash)."""
    import zlib

    return zlib.crc32(slug.encode("utf-8")) & 0x7FFFFFFF


class PgCursor:
    """The part of a DB-API cursor the code reads: rows, and how many rows a write changed."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cursor) if self._cursor.description else iter(())

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class PgConnection:
    """A psycopg connection in autocommit mode: transactions are opened by `db.transaction`."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any], target: PostgresTarget) -> None:
        self.raw = raw
        self.target = target
        # The failure that aborted the open transaction: what a later statement's "current
        # transaction is aborted" (a cleanup in a `finally`) would otherwise hide.
        self.failure: BaseException | None = None
        self.defer_sync = False  # transactions begun now commit without waiting for the disk

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> PgCursor:
        try:
            if not parameters:
                # Sent as written: psycopg substitutes (and so reads `%%` as `%`) only when
                # given parameters, and only a query without them may hold two statements.
                return PgCursor(self.raw.execute(sql))
            return PgCursor(self.raw.execute(_placeholders(sql), parameters))
        except Exception as exc:
            failure = self.failed(exc)
            if failure is exc:
                raise
            raise failure from None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        cursor = self.raw.cursor()
        try:
            cursor.executemany(_placeholders(sql), rows)
        except Exception as exc:
            failure = self.failed(exc)
            if failure is exc:
                raise
            raise failure from None
        return PgCursor(cursor)

    def failed(self, exc: Exception) -> BaseException:
        """What to raise for `exc`: its one-line form, or the failure that aborted the
        transaction when `exc` only says that it is aborted."""
        from psycopg import errors

        if isinstance(exc, errors.InFailedSqlTransaction) and self.failure is not None:
            return self.failure
        self.failure = _translated(exc, self)
        return self.failure

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()

    def alive(self) -> bool:
        """Whether the server still answers on this connection (it may have restarted).
        Only for connections that hold no session locks: a new session would not have them."""
        if self.raw.closed or self.raw.broken:
            return False
        try:
            self.raw.execute("SELECT 1")
        except Exception:
            return False
        return True

    def try_lock(self, key_class: int, key: int, *, shared: bool = False) -> bool:
        """A session advisory lock, taken at once or not at all; it goes when the session dies."""
        function = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
        (got,) = self.raw.execute(f"SELECT {function}(%s, %s)", (key_class, key)).fetchone() or (
            False,
        )
        return bool(got)

    def unlock(self, key_class: int, key: int) -> None:
        self.raw.execute("SELECT pg_advisory_unlock(%s, %s)", (key_class, key))

    def lock_holder(self, key_class: int, key: int) -> str | None:
        """The application_name of the session holding an advisory lock of this database,
        for a busy message; None when nobody holds it or the server does not say."""
        row = self.raw.execute(
            "SELECT a.application_name FROM pg_locks AS l "
            "JOIN pg_stat_activity AS a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            (key_class, key),
        ).fetchone()
        return str(row[0]) if row and row[0] else None


_QUOTED_OR_MARK = re.compile(r"'(?:[^']|'')*'|\?|%")


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """`?` placeholders as psycopg's `%s`, and a literal `%` doubled; quoted text untouched."""

    def swap(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        return token.replace("%", "%%")

    return _QUOTED_OR_MARK.sub(swap, sql)


def connect(target: PostgresTarget, *, lock_timeout_ms: int) -> PgConnection:
    """A checked connection to the server: every failure to connect is one line with its fix."""
    try:
        import psycopg
    except ImportError:
        raise UserError(
            "DATABASE_URL names a PostgreSQL server, but psycopg is not installed",
            where=URL_WHERE,
            fix="pip install 'psycopg[binary]>=3.2'",
        ) from None
    try:
        raw = psycopg.connect(
            target.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="newsletter",
        )
    except psycopg.Error as exc:
        raise _connect_failure(exc, target) from None
    conn = PgConnection(raw, target)
    try:
        check_server_version(raw.info.server_version, target)
        raw.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
        raw.execute("SET TIME ZONE 'UTC'")
    except BaseException:
        raw.close()
        raise
    return conn


def check_server_version(version: int, target: PostgresTarget) -> None:
    """Refuse a server older than MIN_SERVER_VERSION (`version` as libpq gives it: 150004)."""
    if version < MIN_SERVER_VERSION:
        raise UserError(
            f"the PostgreSQL server is version {_version_name(version)}, older than "
            f"the oldest supported ({_version_name(MIN_SERVER_VERSION)})",
            where=target.shown,
            fix="upgrade the server, or point DATABASE_URL at a newer one",
        )


def _version_name(number: int) -> str:
    """150004 is 15.4; before 10, two numbers made the major release: 90624 is 9.6.24."""
    if number < 100000:
        return f"{number // 10000}.{number // 100 % 100}.{number % 100}"
    major, minor = divmod(number, 10000)
    return f"{major}.{minor}" if minor else str(major)


def _connect_failure(exc: Exception, target: PostgresTarget) -> UserError:
    text = redact(str(exc), target)
    lowered = text.lower()
    user = target.user or "the default user"
    if "no password supplied" in lowered:
        return UserError(
            f"the PostgreSQL server asks {user} for a password, and {target.name} gives none",
            where=target.shown,
            fix=f"write it into {target.name}: postgresql://USER:PASSWORD@HOST/DATABASE",
        )
    if "password authentication failed" in lowered:
        return UserError(
            f"the PostgreSQL server refused the password of {user}",
            where=target.shown,
            fix=f"correct the password in {target.name} (percent-encode @ : / in it)",
        )
    if "does not exist" in lowered and "database" in lowered:
        return UserError(
            f"the PostgreSQL database named in {target.name} does not exist",
            where=target.shown,
            fix=f"create it (createdb -O USER NAME) or correct the name in {target.name}",
        )
    if "role" in lowered and "does not exist" in lowered:
        return UserError(
            f"the PostgreSQL server has no user {user}",
            where=target.shown,
            fix=f"create it (createuser --pwprompt NAME) or correct the user in {target.name}",
        )
    if "pg_hba.conf" in lowered:
        return UserError(
            "the PostgreSQL server does not let this machine connect (pg_hba.conf)",
            where=target.shown,
            fix="allow this host and user in the server's pg_hba.conf, then reload it",
        )
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return UserError(
            "the PostgreSQL server's host name is unknown",
            where=target.shown,
            fix=f"correct the host in {target.name}",
        )
    if (
        "connection refused" in lowered
        or "timeout expired" in lowered
        or "could not connect" in lowered
        or "no such file or directory" in lowered
        or "server closed the connection" in lowered
    ):
        return UserError(
            "cannot reach the PostgreSQL server (is it running?)",
            where=target.shown,
            fix=f"start it, or correct the host and port in {target.name}",
        )
    if "percent-encoded" in lowered:  # libpq quotes the token, which may be the password
        return UserError(
            "the URL has a % that is not followed by two hexadecimal digits",
            where=target.shown,
            fix="write a % in the password or the name as %25",
        )
    if "invalid" in lowered or "missing" in lowered:  # libpq read the URL, not the server
        first = " ".join(text.split())[:120]
        return UserError(
            f"the URL is not a valid PostgreSQL URL ({first})",
            where=target.shown,
            fix="write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE[?sslmode=require]",
        )
    first = " ".join(text.split())[:160]
    return UserError(
        f"cannot connect to PostgreSQL ({first})",
        where=target.shown,
        fix=f"check {target.name} and that the server is running",
    )


def redact(text: str, target: PostgresTarget) -> str:
    """`text` with the URL and its password blotted out, in any form psycopg may quote them."""
    from urllib.parse import urlsplit

    # Longest first: the URL, then the password as written in it and as decoded.
    for secret in (target.url, urlsplit(target.url).password, target.password):
        if secret:
            text = text.replace(secret, "***")
    return text


def _translated(exc: Exception, conn: PgConnection) -> BaseException:
    """A database failure the user can act on, as one line; anything else unchanged."""
    from psycopg import errors

    where = conn.target.shown
    if isinstance(exc, errors.LockNotAvailable | errors.QueryCanceled):
        return LockBusy(
            "the database stayed busy (another newsletter run is writing to it)",
            where=where,
            fix="let that run finish, then run the command again",
        )
    if isinstance(exc, errors.InsufficientPrivilege) and "schema" in str(exc):
        return UserError(
            "the PostgreSQL user may not create the workspace's tables "
            "(the database's schema is not up to date)",
            where=where,
            fix="run `newsletter db migrate` once with the database owner's URL, "
            "or GRANT CREATE ON SCHEMA public to this user",
        )
    if isinstance(exc, errors.InsufficientPrivilege):
        return UserError(
            "the PostgreSQL user may not write to the workspace's tables",
            where=where,
            fix="GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
            "(and USAGE on its sequences) to that user, or use the owner's DATABASE_URL",
        )
    if isinstance(exc, errors.ReadOnlySqlTransaction):
        from newsletter.db.errors import ReadOnlyDatabase

        return ReadOnlyDatabase(where)
    if isinstance(exc, errors.DiskFull):
        return UserError(
            "the PostgreSQL server's disk is full",
            where=where,
            fix="free space on the server; nothing was half-written",
        )
    if isinstance(exc, errors.OperationalError) and conn.raw.broken:
        return UserError(
            "lost the connection to the PostgreSQL server",
            where=where,
            fix="check that the server is running, then run the command again "
            "(what was not committed was rolled back)",
        )
    return exc
