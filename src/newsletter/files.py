"""Files: reading the editor's own text files with one-line errors, and the one atomic write."""

from __future__ import annotations

import os
import tempfile
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


def atomic_write(path: Path, data: bytes | str, *, sync: bool = True) -> None:
    """Replace `path` with `data` all at once: a crash leaves the old file or the new, never half.

    Text is written as UTF-8 with "\n" line ends as given. The data goes to a temporary file
    beside `path` (same file system; the folder must exist), is flushed to disk unless `sync`
    is off (many small files that a rerun rewrites anyway), then renamed over `path`.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(raw)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
