"""Values out of a page's metadata: meta tags, structured-data nodes, people, URLs, dates.

Small pure functions the HTML reader uses to turn what extruct and lxml found into teaser fields.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from newsletter.collect.readers.base import plain_text

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


def names_of(value: Any) -> list[str]:
    if isinstance(value, list):
        return [name for item in value for name in names_of(item)]
    if isinstance(value, dict):
        if str(value.get("@type", "")).lower() in {"organization", "newsmediaorganization"}:
            return []
        name = name_of(value)
        return [name] if name else []
    return [value] if isinstance(value, str) else []


def named_people(raw_names: list[str], organisations: set[str]) -> list[str]:
    """Person names from bylines: no URLs, handles, job titles or the publication itself."""
    people: list[str] = []
    for raw in raw_names:
        if "://" in raw:
            continue
        for part in re.split(r"\s*(?:[,;|&/]|\band\b|\bund\b|\by\b)\s*", plain_text(raw)):
            name = re.sub(r"^(by|von|por|par)\s+", "", part.strip(), flags=re.IGNORECASE).strip()
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
    if len(parts) > 1 and site_name and name_key(parts[-1]) in {name_key(site_name)}:
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


def iso_date(value: str | None) -> dt.date | None:
    if not value:
        return None
    match = re.match(r"^\s*(\d{4})-?(\d{2})-?(\d{2})", value)
    if not match:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def json_field(raw: str | None, key: str) -> str | None:
    if not raw:
        return None
    try:
        value = json.loads(raw).get(key)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None
