"""Item addresses as the feed's XML states them, where feedparser's reading goes wrong:
xml:base scoped to one item, relative links in a feed that says its own address, origLink
on an illegally nested item, and tracking redirects that carry the article in a parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

ATOM = "{http://www.w3.org/2005/Atom}"
FEEDBURNER = "{http://rssnamespace.org/feedburner/ext/1.0}"
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
ITEM_TAGS = ("item", f"{ATOM}entry", "{http://purl.org/rss/1.0/}item")
# Redirectors that carry the destination in a parameter: google.com/url?url=, l.php?u=.
REDIRECT_PATH = re.compile(r"^/(url|l\.php|redirect|out|click|link|r)/?$", re.IGNORECASE)
REDIRECT_PARAMETERS = ("url", "u", "q", "dest", "destination", "target", "to")


@dataclass(frozen=True)
class RawItem:
    """What the XML itself says about one item's address."""

    link: str | None  # as written, maybe relative
    base: str | None  # xml:base in scope for it
    original: str | None  # feedburner:origLink


@dataclass(frozen=True)
class RawFeed:
    address: str | None  # the feed's own address: its <link>, else atom:link rel=self
    items: list[RawItem]


def raw_feed(content: bytes) -> RawFeed | None:
    """The feed's addresses from its XML; None when it is not well-formed XML."""
    import lxml.etree

    parser = lxml.etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
    try:
        root = lxml.etree.fromstring(content, parser=parser)
    except (lxml.etree.XMLSyntaxError, ValueError):
        return None
    items = [_raw_item(element) for element in root.iter(*ITEM_TAGS)]
    return RawFeed(address=_feed_address(root), items=items)


def _feed_address(root: Any) -> str | None:
    channel = root.find("channel")
    scope = channel if channel is not None else root
    for link in scope.findall("link") + scope.findall("{http://purl.org/rss/1.0/}channel/link"):
        if (link.text or "").strip():
            return str(link.text).strip()
    for rel in ("alternate", "self"):
        for link in scope.findall(f"{ATOM}link"):
            if (link.get("rel") or "alternate") == rel and link.get("href"):
                return str(link.get("href")).strip()
    return None


def _raw_item(element: Any) -> RawItem:
    link = None
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in ("link", "{http://purl.org/rss/1.0/}link") and (child.text or "").strip():
            link = str(child.text).strip()
            break
        if tag == f"{ATOM}link" and (child.get("rel") or "alternate") == "alternate":
            link = (child.get("href") or "").strip() or None
            break
    original = element.find(f"{FEEDBURNER}origLink")
    bases = [str(e.get(XML_BASE)) for e in (element, *element.iterancestors()) if e.get(XML_BASE)]
    base = None
    for scope in reversed(bases):  # outermost first: inner bases resolve against outer ones
        base = urljoin(base, scope) if base else scope
    return RawItem(
        link=link,
        base=base,
        original=(original.text or "").strip() or None if original is not None else None,
    )


def is_absolute(url: str | None) -> bool:
    return bool(url and re.match(r"^https?://", url, re.IGNORECASE))


def item_address(parsed_link: str | None, raw: RawItem | None, feed: str | None) -> str | None:
    """The article's address: origLink, else the link resolved in its own scope, unwrapped."""
    if raw is not None and is_absolute(raw.original):
        return raw.original
    link = parsed_link
    if raw is not None and raw.link and not is_absolute(raw.link):
        base = raw.base or feed
        link = urljoin(base, raw.link) if base and is_absolute(urljoin(base, raw.link)) else link
    elif link and not is_absolute(link) and feed:
        link = urljoin(feed, link)
    return unwrap_redirect(link) if link else None


def unwrap_redirect(url: str) -> str:
    """google.com/url?...&url=ARTICLE -> ARTICLE; anything else as it is."""
    parts = urlsplit(url)
    if not REDIRECT_PATH.match(parts.path or ""):
        return url
    for key, value in parse_qsl(parts.query):
        if key.lower() in REDIRECT_PARAMETERS and is_absolute(value):
            return value
    return url
