"""`newsletter archive DIR`: the archive as static files, for hosting without a server."""

from __future__ import annotations

from pathlib import Path

from newsletter.config import Settings
from newsletter.db import open_database
from newsletter.errors import UserError
from newsletter.files import atomic_write
from newsletter.web.archive import atom_feed, index_html, published


def write_archive(settings: Settings, target: Path) -> int:
    """Write index.html, feed.xml and SLUG/index.html into `target`; return the issue count."""
    if target.exists() and not target.is_dir():
        raise UserError("it is a file", where=target, fix="give a folder to write into")
    if not target.parent.is_dir():
        raise UserError(
            f"the folder {target.parent} does not exist",
            where=target,
            fix="create it first, or give a folder inside an existing one",
        )
    if target.is_dir() and any(target.iterdir()) and not _an_archive(target):
        raise UserError(
            "the folder holds other files and no archive written before",
            where=target,
            fix="give a new or empty folder (or one `newsletter archive` wrote)",
        )
    conn = open_database(settings.database)
    try:
        issues = published(settings, conn)
    finally:
        conn.close()
    try:
        target.mkdir(exist_ok=True)
        for item in issues:
            folder = target / item.slug
            folder.mkdir(exist_ok=True)
            atomic_write(folder / "index.html", item.web_html.read_bytes())
        atomic_write(target / "feed.xml", atom_feed(settings, issues))
        atomic_write(target / "index.html", index_html(settings, issues, static=True))
    except OSError as exc:
        raise UserError(
            f"cannot write the archive ({exc.strerror})",
            where=exc.filename or target,
            fix="check the folder's permissions and free space",
        ) from None
    return len(issues)


def _an_archive(folder: Path) -> bool:
    """A folder this command wrote before (it is updated in place)."""
    feed = folder / "feed.xml"
    return (folder / "index.html").is_file() and feed.is_file() and b"<feed" in feed.read_bytes()
