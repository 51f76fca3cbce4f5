"""Reading the editor's own text files (settings, issues) with one-line errors."""

from __future__ import annotations

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
