"""RSS 2.0, RSS 1.0 (RDF) and Atom feeds through feedparser: the newest items become articles."""

from __future__ import annotations

import datetime as dt
import email.utils
import re
from dataclasses import dataclass
from html import unescape
from typing import Any
from urllib.parse import urljoin

from newsletter.collect.readers.base import (
    Document,
    Found,
    Reader,
    cut_teaser,
    first_of,
    make_article,
    plain_text,
    squash,
)
from newsletter.collect.readers.decode import repair_utf8
from newsletter.collect.readers.feed_links import RawItem, item_address, raw_feed
from newsletter.collect.readers.images import is_tracking_image
from newsletter.collect.readers.teasers import clean_teaser
from newsletter.errors import SourceError

DEFAULT_LIMIT = 10
TITLE_FROM_TEXT_MAX = 90
FEED_ROOT = re.compile(rb"<(rss|feed|rdf:RDF)[\s>]", re.IGNORECASE)
LEAD_PARAGRAPHS = 3
IMAGE_KEYS = ("bigimage", "image", "smallimage", "thumbnail")
# Bylines that name a role or a desk, not a person.
NOT_A_PERSON = re.compile(r"^(staff|editor|admin|team|desk|newsroom|staff writer|web desk)$", re.I)


class FeedReader(Reader):
    name = "feed"
    suffixes = (".rss", ".atom", ".rdf", ".xml", ".feed")
    content_types = (
        "application/rss+xml",
        "application/atom+xml",
        "application/rdf+xml",
        "application/xml",
        "text/xml",
        "application/feed+json",
    )

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return bool(FEED_ROOT.search(head))

    def read(self, document: Document) -> list[Found]:
        items, skipped, about = read_feed(document)
        if about:
            self.notes.append(about)
        if skipped:
            self.notes.append(f"{skipped} empty item(s) skipped (the feed is malformed)")
        if self.options.since:
            since = self.options.since
            items = [item for item in items if item.date is not None and item.date >= since]
            if not items:
                self.notes.append(f"no item published on or after {since.isoformat()}")
                return []
        limit = self.options.limit if self.options.limit is not None else DEFAULT_LIMIT
        return [_found(document, item) for item in items[:limit]]


@dataclass(frozen=True)
class FeedItem:
    """Teaser-card fields of one feed item, as the feed gives them; None where it does not."""

    title: str | None
    teaser: str
    image: str | None
    url: str | None
    date: dt.date | None
    author: str | None
    published: float | None = None  # the exact time, for ordering items of the same day


def feed_items(document: Document) -> tuple[list[FeedItem], int]:
    """The items, newest first, and how many empty (malformed) items were left out."""
    items, skipped, _ = read_feed(document)
    return items, skipped


def read_feed(document: Document) -> tuple[list[FeedItem], int, str | None]:
    """The items, newest first; how many empty items were left out; the feed's name and site."""
    import feedparser

    headers = {"content-location": document.base_url} if document.base_url else {}
    content = repair_utf8(document.content, document.charset)
    parsed = feedparser.parse(content, response_headers=headers)
    entries = [entry for entry in parsed.entries if _has_content(entry)]
    if not entries:
        raise _empty_feed_error(document, parsed)
    feed_author = _feed_author(parsed)
    raw = raw_feed(content)
    # The XML's items in document order, when they line up with feedparser's entries.
    raw_items: dict[int, RawItem] = {}
    if raw is not None and len(raw.items) == len(parsed.entries):
        raw_items = {id(entry): item for entry, item in zip(parsed.entries, raw.items, strict=True)}
    address = document.base_url or (raw.address if raw else None) or parsed.feed.get("link")
    items = []
    for entry in entries:
        raw_item = raw_items.get(id(entry))
        url = item_address(_link_of(entry), raw_item, address)
        # Pictures in an item's HTML were written on the feed's site, not where a link-post points.
        content_base = (raw_item.base if raw_item else None) or address or url or ""
        items.append(
            FeedItem(
                title=plain_text(entry.get("title") or "") or None,
                teaser=_teaser_of(entry),
                image=_image_of(entry, content_base),
                url=url,
                date=_date_of(entry),
                author=_author_of(entry) or feed_author,
                published=_timestamp(entry),
            )
        )
    return _newest_first(items), len(parsed.entries) - len(entries), _about(parsed, address)


def _about(parsed: Any, address: str | None) -> str | None:
    """The feed's own title and site, said to the editor beside what was added."""
    title = plain_text(parsed.feed.get("title") or "")
    if not title and not address:
        return None
    return f'feed "{title or "untitled"}"' + (f" from {address}" if address else "")


def _found(document: Document, item: FeedItem) -> Found:
    if item.url and not re.match(r"^https?://", item.url, re.IGNORECASE):
        raise SourceError(
            f"item links are relative ({item.url}) and the feed does not say its own address",
            where=document.location,
            fix="give the feed's address with --url",
        )
    title = item.title or _title_from(item.teaser)
    fields = {
        "title": title,
        "url": item.url,
        "teaser": item.teaser,
        "image": {"src": item.image, "alt": title} if item.image else None,
        "author": item.author,
        "date": item.date,
    }
    return Found(article=make_article(document.location, fields))


def _has_content(entry: Any) -> bool:
    return bool(_link_of(entry) and (entry.get("title") or entry.get("summary")))


def _empty_feed_error(document: Document, parsed: Any) -> SourceError:
    if parsed.get("version"):
        return SourceError(
            "the feed has no items", where=document.location, fix="try again when it has news"
        )
    problem = parsed.get("bozo_exception")
    reason = f" ({_first_line(problem)})" if problem else ""
    return SourceError(
        f"not an RSS or Atom feed{reason}",
        where=document.location,
        fix="give the feed's address (often /feed/ or /rss) or an article page",
    )


def _first_line(problem: object) -> str:
    text = str(problem).strip().splitlines()
    return text[0] if text else type(problem).__name__


def _newest_first(items: list[FeedItem]) -> list[FeedItem]:
    # By the exact time, else the day; stable: undated items go last in the feed's order.
    def key(item: FeedItem) -> tuple[int, float]:
        if item.published is not None:
            return (0, -item.published)
        if item.date is not None:
            return (0, -dt.datetime.combine(item.date, dt.time(12)).timestamp())
        return (1, 0.0)

    return sorted(items, key=key)


def _timestamp(entry: Any) -> float | None:
    import calendar

    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    return float(calendar.timegm(stamp)) if stamp else None


def _link_of(entry: Any) -> str | None:
    # FeedBurner rewrites links through its tracker; origLink is the article itself.
    link = first_of(entry.get("feedburner_origlink"), entry.get("link"))
    if link:
        return link
    guid = entry.get("id") or ""
    return guid if re.match(r"^https?://", guid) else None


# Links that are not the item's words: "Read more", "Continue reading on »", "Comments", "∞".
READ_MORE_LINK = re.compile(
    r"<a\b[^>]*>\s*(?:read(?: more| on| the full[^<]*)?|comments?|continue reading[^<]*|"
    r"permalink|∞[^<]*|more\W*|weiterlesen)\s*</a>",
    re.IGNORECASE,
)


def _teaser_of(entry: Any) -> str:
    summary = entry.get("summary") or ""
    if not plain_text(summary):
        contents = entry.get("content") or []
        summary = contents[0].get("value", "") if contents else ""
    text = plain_text(READ_MORE_LINK.sub(" ", summary))
    return cut_teaser(clean_teaser(text, plain_text(entry.get("title") or "")))


def _title_from(teaser: str) -> str:
    """Micro-posts have no title: their first words stand in for one."""
    return cut_teaser(teaser.rstrip("…"), TITLE_FROM_TEXT_MAX) if teaser else ""


Candidate = tuple[str, object, object]  # src, declared width, declared height


def _image_of(entry: Any, base: str) -> str | None:
    candidates: list[Candidate] = []
    candidates += [_sized(m, m.get("url", "")) for m in entry.get("media_thumbnail") or []]
    candidates += [
        _sized(m, m.get("url", ""))
        for m in entry.get("media_content") or []
        if m.get("medium") == "image" or str(m.get("type", "")).startswith("image/")
    ]
    candidates += [
        (link.get("href", ""), None, None)
        for link in entry.get("links") or []
        if link.get("rel") == "enclosure" and str(link.get("type", "")).startswith("image/")
    ]
    candidates += [(entry[k], None, None) for k in IMAGE_KEYS if isinstance(entry.get(k), str)]
    candidates += _images_in_html(entry)
    for candidate, width, height in candidates:
        src = urljoin(base, unescape(squash(candidate or "")))
        if re.match(r"^https?://[^/\s]+\.[^/\s]+/", src) and not is_tracking_image(
            src, width, height
        ):
            return src
    return None


def _sized(media: Any, src: str) -> Candidate:
    return src, media.get("width"), media.get("height")


def _images_in_html(entry: Any) -> list[Candidate]:
    """Images at the top of the item's HTML; one after a few paragraphs illustrates the text."""
    html_parts = [entry.get("summary") or ""]
    html_parts += [c.get("value", "") for c in entry.get("content") or []]
    found: list[Candidate] = []
    for html in html_parts:
        for match in re.finditer(r"<img\b[^>]*>", html, re.IGNORECASE):
            before = html[: match.start()]
            closed = len(re.findall(r"</p>", before, re.IGNORECASE))
            opened = len(re.findall(r"<p[\s>]", before, re.IGNORECASE))
            if max(closed, opened - 1) >= LEAD_PARAGRAPHS:  # some feeds never close a <p>
                continue
            tag = match.group(0)
            src = _attribute(tag, "src")
            if src:
                found.append((src, _attribute(tag, "width"), _attribute(tag, "height")))
    return found


def _attribute(tag: str, name: str) -> str | None:
    match = re.search(rf"""\s{name}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", tag, re.IGNORECASE)
    if not match:
        style = re.search(rf"""{name}\s*:\s*(\d+)\s*px""", tag, re.IGNORECASE)
        return style.group(1) if style else None
    return next(group for group in match.groups() if group is not None)


def _author_of(entry: Any) -> str | None:
    detail = entry.get("author_detail") or {}
    name = first_of(detail.get("name"), entry.get("author"))
    if not name:
        return None
    name = squash(re.sub(r"\S+@\S+", "", name).strip(" ()"))
    if not name or "://" in name or NOT_A_PERSON.match(name):
        return None
    return name


def _feed_author(parsed: Any) -> str | None:
    # Atom says entries inherit the feed's author; in RSS the channel's is the publisher.
    if not str(parsed.get("version", "")).startswith("atom"):
        return None
    detail = parsed.feed.get("author_detail") or {}
    return _author_of({"author_detail": detail, "author": parsed.feed.get("author")})


def _date_of(entry: Any) -> dt.date | None:
    """The day as the publisher wrote it (feedparser's parsed stamps are shifted to UTC)."""
    raw = entry.get("published") or entry.get("updated") or ""
    try:
        return email.utils.parsedate_to_datetime(raw).date()
    except (TypeError, ValueError, IndexError):
        pass
    if match := re.match(r"^\s*(\d{4})-(\d{2})-(\d{2})", raw):
        try:
            return dt.date(*(int(part) for part in match.groups()))
        except ValueError:
            pass
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    return dt.date(stamp.tm_year, stamp.tm_mon, stamp.tm_mday) if stamp else None
