"""The archive: every issue that went out, as its web version, an index and an Atom feed.

The same pages are served by `newsletter serve` (/archive/...) and written as a static
site by `newsletter archive DIR`. Only issues a real backend sent are listed (an outbox
rehearsal reached nobody), and a web version carries no personal data.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.etree import ElementTree as ET

from newsletter.config import Settings
from newsletter.deliver.backends import rehearsal_backends
from newsletter.deliver.ledger_view import LedgerView
from newsletter.errors import NewsletterError
from newsletter.issue.file import load_issue
from newsletter.issue.model import ISSUE_FILE
from newsletter.schedule.store import held_until
from newsletter.web.pages import render

WEB_FILE = "web.html"
ATOM = "http://www.w3.org/2005/Atom"
# The web version is our own page with inline styles and remote images; nothing runs.
ARCHIVE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)

if TYPE_CHECKING:
    from newsletter.db import Connection


@dataclass(frozen=True)
class Published:
    slug: str
    subject: str
    summary: str
    date: dt.date | None
    sent: dt.datetime
    web_html: Path

    @property
    def date_text(self) -> str:
        day = self.date or self.sent.date()
        return f"{day.day} {day:%B} {day.year}"


def published(settings: Settings, conn: Connection, only: str | None = None) -> list[Published]:
    """The issues that went out and still have a web version, newest first (`only`: that
    one issue, without reading the others' files)."""
    rehearsals = rehearsal_backends()
    found = []
    now = dt.datetime.now(dt.UTC)
    for slug, first in LedgerView(conn).went_out(rehearsals):
        if only is not None and slug != only:
            continue
        web_html = settings.build_dir(slug) / WEB_FILE
        held = held_until(conn, slug)
        if not web_html.is_file() or (held is not None and held > now):
            continue  # not built, or SendGrid still holds it until its time
        subject, summary, date = slug, "", None
        try:
            issue = load_issue(settings.issue_dir(slug) / ISSUE_FILE)
            subject, summary, date = issue.subject, issue.preheader, issue.date
        except NewsletterError:
            pass  # the issue file was moved or broke after sending: its build still stands
        sent = dt.datetime.fromisoformat(first)
        if held is not None:
            sent = max(sent, held)
        found.append(Published(slug, subject, summary, date, sent, web_html))
    return found


def find(settings: Settings, conn: Connection, slug: str) -> Published | None:
    return next(iter(published(settings, conn, only=slug)), None)


def index_html(settings: Settings, issues: list[Published], *, static: bool) -> str:
    """The archive's index; links are relative, so the static copy works anywhere."""
    return render(
        settings,
        "archive_index.html",
        title=f"{settings.file.newsletter.name}: the archive",
        indexable=True,  # the archive is public; the personal pages are noindex
        issues=[_linked(item, static) for item in issues],
        feed_url="feed.xml",
        subscribe_url=settings.file.newsletter.subscribe_url,
    )


def _linked(item: Published, static: bool) -> dict[str, str]:
    path = f"{item.slug}/index.html" if static else f"{item.slug}/"
    return {"path": path, "subject": item.subject, "date_text": item.date_text}


def atom_feed(settings: Settings, issues: list[Published]) -> bytes:
    newsletter = settings.file.newsletter
    archive = newsletter.web_base_url.rstrip("/") + "/"
    ET.register_namespace("", ATOM)
    feed = ET.Element(f"{{{ATOM}}}feed")
    _text(feed, "title", newsletter.name)
    _text(feed, "id", archive)
    ET.SubElement(feed, f"{{{ATOM}}}link", href=archive)
    ET.SubElement(feed, f"{{{ATOM}}}link", rel="self", href=archive + "feed.xml")
    newest = issues[0].sent if issues else dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    _text(feed, "updated", _stamp(newest))
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    _text(author, "name", settings.file.sender.name)
    for item in issues:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        url = f"{archive}{item.slug}/"
        _text(entry, "title", item.subject)
        _text(entry, "id", url)
        ET.SubElement(entry, f"{{{ATOM}}}link", href=url)
        _text(entry, "updated", _stamp(item.sent))
        _text(entry, "published", _stamp(item.sent))
        if item.summary:
            _text(entry, "summary", item.summary)
    body = ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    assert isinstance(body, bytes)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + body


def _text(parent: ET.Element, tag: str, value: str) -> None:
    ET.SubElement(parent, f"{{{ATOM}}}{tag}").text = value


def _stamp(moment: dt.datetime) -> str:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
