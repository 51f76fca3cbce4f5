"""The workspace's locks: one OS file lock per job (a send, the cron run), taken at once or refused.

The lock is an OS file lock (flock): the kernel drops it when its process dies, even by
SIGKILL, so a killed run never blocks the next one. Where flock is missing, filelock falls
back to a lock file naming its owner's PID and host, which it breaks once that process is
gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.errors import LockBusy, UserError

if TYPE_CHECKING:
    from filelock import BaseFileLock

SEND_LOCK_FILE = ".newsletter-send.lock"
WRITABLE_FIX = "make the workspace writable by the user that runs newsletter (e.g. cron's user)"


def take_lock(
    path: Path,
    *,
    busy: str,
    busy_fix: str,
    lock_class: type[BaseFileLock] | None = None,
) -> BaseFileLock:
    """The lock at `path`, held; LockBusy at once when another process has it."""
    from filelock import FileLock, Timeout

    lock = (lock_class or FileLock)(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockBusy(busy, where=path, fix=busy_fix) from None
    except NotImplementedError:
        raise UserError(
            "the file system does not support file locks (flock)",
            where=path,
            fix="keep the workspace on a local disk, or install filelock >= 4 "
            "(it falls back to a lock file)",
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot create the lock file ({exc.strerror or exc})", where=path, fix=WRITABLE_FIX
        ) from None
    return lock
