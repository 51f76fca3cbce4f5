"""Files: reading the editor's own text files with one-line errors, and the one atomic write."""

from __future__ import annotations

import os
import stat
import tempfile
import threading
from pathlib import Path

from newsletter.errors import UserError


def read_utf8(path: Path, error: type[UserError], missing_fix: str) -> str:
    """The file's text, or `error` saying what is wrong with it, where, and how to fix it."""
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        raise error("file not found", where=path, fix=missing_fix) from None
    except IsADirectoryError:
        raise error("is a folder, not a file", where=path, fix=missing_fix) from None
    except UnicodeDecodeError as exc:
        raise error(
            f"not UTF-8 text (byte {exc.start})", where=path, fix="save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise error(
            f"cannot read it ({exc.strerror})", where=path, fix="check the file's permissions"
        ) from None


def atomic_write(
    path: Path, data: bytes | str, *, sync: bool = True, private: bool = False
) -> None:
    """Replace `path` with `data` all at once: a crash leaves the old file or the new, never half.

    Text is written as UTF-8 with "\n" line ends as given. The data goes to a temporary file
    beside `path` (same file system; the folder must exist), is flushed to disk unless `sync`
    is off (many small files that a rerun rewrites anyway), then renamed over `path`. The
    file keeps the mode it had, or gets the one the user's umask gives a new file (a web
    server must read the archive); `private` makes it readable by its owner only.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    mode = 0o600 if private else _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK_LOCK = threading.Lock()


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        pass
    with _UMASK_LOCK:  # Python cannot read the umask without setting it
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask
