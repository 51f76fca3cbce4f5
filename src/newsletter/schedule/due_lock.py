"""The cron lock: one `newsletter send --due` (or `cancel`) at a time.

On SQLite it is the workspace's OS file lock (flock), so a run killed even by SIGKILL
never blocks the next one; beside it a small note names the holder for the message a
second run prints. On PostgreSQL, where cron may run on several hosts against one
database, it is a session advisory lock held on a connection of its own for the whole
run: the server drops it when that session ends (the process exits, is killed, or its host
dies), and the session's application_name names the holder.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from newsletter.db import PgConnection, PostgresTarget, connect_checked
from newsletter.db.postgres import CRON, LOCK_CLASS
from newsletter.deliver.lock import take_lock
from newsletter.errors import LockBusy
from newsletter.files import atomic_write

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings

# One logger name for scheduled sending, as the run log showed before the module split.
log = logging.getLogger("newsletter.schedule")

DUE_LOCK_FILE = ".newsletter-due.lock"
LOCK_OWNER_FILE = ".newsletter-due.owner"
BUSY = "another `newsletter send --due` is running"
BUSY_FIX = "nothing to do: that run sends what is due; the lock goes when it ends"
# The lock's session on PostgreSQL says who holds it: "newsletter-due SINCE PID HOST".
OWNER_NAME = "newsletter-due"
_SINCE = "%Y%m%dT%H%M%SZ"
_APPLICATION_NAME_BYTES = 63  # what the server keeps of an application_name


@contextmanager
def due_lock(
    settings: Settings,
    now: dt.datetime,
    *,
    lock_class: type[BaseFileLock] | None = None,
) -> Iterator[None]:
    """Hold the cron lock (see `deliver.lock`, or above on PostgreSQL), or raise LockBusy
    at once."""
    target = settings.database
    if isinstance(target, PostgresTarget):
        with _server_lock(target, now):
            yield
        return
    path = settings.workspace / DUE_LOCK_FILE
    lock = take_lock(
        path,
        busy=f"{BUSY}{_holder(settings)}",
        busy_fix=BUSY_FIX,
        lock_class=lock_class,
    )
    try:
        _write_owner(settings, now)
        yield
    finally:
        # Gone before the lock is: a later busy message never names a finished run.
        (settings.workspace / LOCK_OWNER_FILE).unlink(missing_ok=True)
        lock.release()


def _write_owner(settings: Settings, now: dt.datetime) -> None:
    """Who holds the lock, for the message a second run prints (not part of the lock)."""
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": now.isoformat()}
    path = settings.workspace / LOCK_OWNER_FILE
    try:
        atomic_write(path, json.dumps(owner), sync=False, private=True)
    except OSError as exc:
        log.warning("could not write %s (%s)", path, exc)


def _holder(settings: Settings) -> str:
    try:
        owner = json.loads((settings.workspace / LOCK_OWNER_FILE).read_text(encoding="utf-8"))
        since = dt.datetime.fromisoformat(owner["since"])
        return f" (pid {owner['pid']} on {owner['host']}, since {since:%Y-%m-%d %H:%M:%S} UTC)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


@contextmanager
def _server_lock(target: PostgresTarget, now: dt.datetime) -> Iterator[None]:
    """The cron lock on PostgreSQL: a session advisory lock on a connection of its own."""
    conn = connect_checked(target)
    try:
        if not isinstance(conn, PgConnection):
            raise TypeError("a PostgreSQL target gave a SQLite connection")
        since = now.astimezone(dt.UTC).strftime(_SINCE)
        name = f"{OWNER_NAME} {since} {os.getpid()} {socket.gethostname()}"
        name = name.encode()[:_APPLICATION_NAME_BYTES].decode(errors="ignore")
        conn.execute("SELECT set_config('application_name', ?, false)", (name,))
        if not conn.try_lock(LOCK_CLASS, CRON):
            holder = _server_holder(conn.lock_holder(LOCK_CLASS, CRON))
            raise LockBusy(f"{BUSY}{holder}", where=target.shown, fix=BUSY_FIX)
        yield
    finally:
        conn.close()  # the lock goes with the session


def _server_holder(name: str | None) -> str:
    """The holder as the file lock's message names it, from its session's application_name."""
    parts = (name or "").split(" ", 3)
    if len(parts) != 4 or parts[0] != OWNER_NAME or not parts[2].isdigit():
        return ""
    try:
        since = dt.datetime.strptime(parts[1], _SINCE)
    except ValueError:
        return ""
    return f" (pid {parts[2]} on {parts[3]}, since {since:%Y-%m-%d %H:%M:%S} UTC)"
