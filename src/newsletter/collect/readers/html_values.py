"""Values out of a page's metadata: meta tags, structured-data nodes, people, URLs, dates.

Small pure functions the HTML reader uses to turn what lxml found into teaser fields.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from newsletter.collect.readers.base import plain_text

# A byline part naming a company or a desk, not a person ("..., Northeast Ohio Media Group").
ORGANISATION_WORDS = re.compile(
    r"\b(group|media|news|press|agency|network|inc|ltd|llc|gmbh|corp|newspapers?|magazine|"
    r"redaktion|redacción|rédaction|desk)\b",
    re.IGNORECASE,
)
# "Photography by X", "Produced by Y", "Übersetzt von Z": credits, not the writer.
CREDIT_ROLE = re.compile(
    r"^(photo\w*|pictures?|images?|produced|production|illustrat\w*|video|graphics?|edited|"
    r"additional reporting|translated|übersetzt|fotos?)\b[^,|]*?\b(by|von|por|par)\b",
    re.IGNORECASE,
)
JOB_WORDS = re.compile(
    r"\b(reporter|editor|correspondent|writer|staff|contributor|columnist|journalist|"
    r"producer|analyst|photographer|intern|chief|senior|special to)\b",
    re.IGNORECASE,
)


def meta_tags(tree: Any) -> dict[str, str]:
    """First non-empty content of each <meta> by name, property or itemprop (lower-cased)."""
    found: dict[str, str] = {}
    for meta in tree.iterfind(".//meta"):
        content = (meta.get("content") or "").strip()
        if not content:
            continue
        for attribute in ("property", "name", "itemprop"):
            key = (meta.get(attribute) or "").strip().lower()
            if key:
                found.setdefault(key, content)
    return found


def flatten_graph(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from flatten_graph(item)
    elif isinstance(node, dict):
        yield node
        if "@graph" in node:
            yield from flatten_graph(node["@graph"])


def mf_properties(node: dict[str, Any]) -> dict[str, Any]:
    properties = node.get("properties", {})
    return {
        key: (value[0] if isinstance(value, list) and value else value)
        for key, value in properties.items()
    }


def text_of(value: Any) -> str | None:
    if isinstance(value, list):
        return text_of(value[0]) if value else None
    if isinstance(value, dict):
        return text_of(value.get("value") or value.get("@value") or value.get("name"))
    return value if isinstance(value, str) else None


def name_of(value: Any) -> str | None:
    if isinstance(value, dict):
        properties = value.get("properties")
        return text_of(properties.get("name")) if isinstance(properties, dict) else text_of(value)
    return text_of(value)


def id_of(value: Any) -> str | None:
    if isinstance(value, dict):
        return text_of(value.get("@id") or value.get("url"))
    return text_of(value)


def url_of(value: Any) -> str | None:
    if isinstance(value, list):
        return next((url for item in value if (url := url_of(item))), None)
    if isinstance(value, dict):
        properties = value.get("properties")
        source = properties if isinstance(properties, dict) else value
        return url_of(source.get("url") or source.get("contentUrl") or source.get("@id"))
    return value.strip() if isinstance(value, str) and value.strip() else None


ORGANISATION_TYPES = {"organization", "newsmediaorganization", "corporation", "newsorganization"}


def _is_organisation(value: dict[str, Any]) -> bool:
    types = value.get("@type") or value.get("type") or []
    types = [types] if isinstance(types, str) else types
    return any(str(t).lower().rsplit("/", 1)[-1] in ORGANISATION_TYPES for t in types)


def names_of(value: Any) -> list[str]:
    """People named in a JSON-LD/microdata author value (a string, an object, a list)."""
    if isinstance(value, list):
        return [name for item in value for name in names_of(item)]
    if isinstance(value, dict):
        if _is_organisation(value):
            return []
        name = name_of(value)
        return [name] if name else []
    return [value] if isinstance(value, str) else []


def organisation_names(value: Any) -> list[str]:
    """Organisations given as author: the byline of last resort."""
    if isinstance(value, list):
        return [name for item in value for name in organisation_names(item)]
    if isinstance(value, dict) and _is_organisation(value):
        name = name_of(value)
        return [name] if name else []
    return []


# Byline markup in the page itself: microdata, rel=author, hCard, WordPress and CMS classes.
BYLINE_PATHS = (
    ".//*[@itemprop='author']//*[@itemprop='name']",
    ".//*[@itemprop='author']",
    ".//a[@rel='author']",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' author ')]"
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' fn ')]",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' vcard ')]"
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' fn ')]",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' byline ')]//a",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' byline ')]",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' author-name ')]",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' vcard ')]"
    "[contains(concat(' ', normalize-space(@class), ' '), ' author ')]",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), '-author ')]",
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' field-field-contributor ')]",
    ".//*[contains(@class, 'contributor')]//a",
)


# Boxes named like bylines that credit a photo or belong to a comment.
NOT_A_BYLINE = re.compile(r"img|image|photo|foto|credit|caption|comment", re.IGNORECASE)


def byline_names(tree: Any) -> list[str]:
    """Bylines written in the page's markup, by the first kind of markup that has one."""
    for path in BYLINE_PATHS:
        names = []
        for node in tree.xpath(path):
            if NOT_A_BYLINE.search(node.get("class") or ""):
                continue
            text = (node.get("content") or "") if node.tag == "meta" else node.text_content()
            text = re.sub(r"\s+", " ", text).strip()
            if text and len(text) <= 80:
                names.append(text)
        if names:
            return names
    return []


_DATE_WORDS = (
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|"
    r"january|february|march|april|june|july|august|september|october|november|december|"
    r"jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec|"
    r"montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonntag|"
    r"updated|published|posted|aktualisiert|veröffentlicht|am|on"
)
_ONLY_DATE = re.compile(rf"(?:\b(?:{_DATE_WORDS})\b|[\d\s,.:/-])+", re.IGNORECASE)
_GLUED_DATE = re.compile(rf"\s+(?:\b(?:{_DATE_WORDS})\b\.?|\d).*$", re.IGNORECASE)


def named_people(raw_names: list[str], organisations: set[str]) -> list[str]:
    """Person names from bylines: no URLs, handles, job titles or the publication itself."""
    people: list[str] = []
    for raw in raw_names:
        # A URL, or a whole author box ("See All Articles ... Bio\nAnn is a commentator.")
        if "://" in raw or ("\n" in raw.strip() and len(raw) > 60) or len(raw) > 200:
            continue
        parts = re.split(r"\s*(?:[,;|&/]|\band\b|\bund\b|\by\b)\s*", plain_text(raw))
        for part in parts:
            if CREDIT_ROLE.match(part.strip()) or (
                len(parts) > 1 and ORGANISATION_WORDS.search(part)
            ):
                continue
            name = re.sub(
                r"^((text|words|story|written)\s+)?(by|von|por|par)\s*:?\s+",
                "",
                part.strip(),
                flags=re.IGNORECASE,
            ).strip()
            # "Jeff Foust Monday, November 3" -> "Jeff Foust", "November 3"; not "April Bernard"
            name = "" if _ONLY_DATE.fullmatch(name) else _GLUED_DATE.sub("", name)
            name = re.sub(r"\s*@\w+", "", name).strip(" -–—·:")  # "Ann Lee @annlee"
            if (
                not name
                or name.startswith(("@", "www."))
                or "@" in name
                or name_key(name) in organisations
                or JOB_WORDS.search(name)
                or len(name) > 60
            ) or name in people:
                continue
            people.append(name)
    return people


def name_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold().removeprefix("www."))


def without_site_name(title: str, site_name: str | None) -> str:
    """'Headline | Site' -> 'Headline' when the tail is the site's name."""
    parts = re.split(r"\s+[|–—·-]\s+", title)
    if len(parts) > 1 and site_name:
        tail, site = name_key(parts[-1]), name_key(site_name)
        # "| Gelbe Liste" for "Gelbe Liste Online", "| Backstage" for "backstage.com"
        if tail == site or (len(tail) >= 4 and (site.startswith(tail) or tail.startswith(site))):
            return " - ".join(parts[:-1]).strip()
    return title


def absolute(href: str | None, base: str | None) -> str | None:
    if not href:
        return None
    href = href.strip()
    if href.startswith("//"):
        scheme = urlsplit(base).scheme if base else ""
        href = f"{scheme or 'https'}:{href}"
    resolved = urljoin(base, href) if base else href
    return resolved if re.match(r"^https?://[^/\s]+\.[^/\s]+", resolved) else None


def json_field(raw: str | None, key: str) -> str | None:
    if not raw:
        return None
    try:
        value = json.loads(raw).get(key)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
