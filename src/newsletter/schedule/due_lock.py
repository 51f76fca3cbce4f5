"""The workspace's cron lock: one `newsletter send --due` (or `cancel`) at a time.

The lock is an OS file lock (flock), so a run killed even by SIGKILL never blocks the
next one; beside it a small note names the holder for the message a second run prints.
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

from newsletter.deliver.lock import take_lock
from newsletter.files import atomic_write

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings

# One logger name for scheduled sending, as the run log showed before the module split.
log = logging.getLogger("newsletter.schedule")

DUE_LOCK_FILE = ".newsletter-due.lock"
LOCK_OWNER_FILE = ".newsletter-due.owner"


@contextmanager
def due_lock(
    settings: Settings,
    now: dt.datetime,
    *,
    lock_class: type[BaseFileLock] | None = None,
) -> Iterator[None]:
    """Hold the workspace's cron lock (see `deliver.lock`), or raise LockBusy at once."""
    path = settings.workspace / DUE_LOCK_FILE
    lock = take_lock(
        path,
        busy=f"another `newsletter send --due` is running{_holder(settings)}",
        busy_fix="nothing to do: that run sends what is due; the lock goes when it ends",
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
