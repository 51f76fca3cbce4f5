"""Structured data a page declares about itself: JSON-LD, microdata and h-entry microformats.

Read with lxml alone, in the shapes extruct gives (uniform=False), so that `add` does not pay
for extruct's parsers (html5lib, rdflib, mf2py) on every page: a few milliseconds, not 0.35 s.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Where an element's microdata value lives, by tag (WHATWG HTML, "values").
_URL_ATTRIBUTES = {
    "a": "href",
    "area": "href",
    "link": "href",
    "img": "src",
    "audio": "src",
    "video": "src",
    "source": "src",
    "embed": "src",
    "iframe": "src",
    "track": "src",
    "object": "data",
}


def structured_data(tree: Any) -> dict[str, list[Any]]:
    """{"json-ld": [...], "microdata": [...], "microformat": [...]} of a parsed page."""
    return {
        "json-ld": json_ld(tree),
        "microdata": microdata(tree),
        "microformat": h_entries(tree),
    }


# --- JSON-LD -------------------------------------------------------------------------------


def json_ld(tree: Any) -> list[Any]:
    """Every JSON-LD block that parses; a broken block is skipped, as browsers and crawlers do."""
    found: list[Any] = []
    for script in tree.iterfind(".//script[@type]"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        text = _json_text(script.text or "")
        if not text:
            continue
        try:
            found.append(json.loads(text, strict=False))
        except ValueError:
            # Trailing commas are the usual hand-written slip.
            try:
                found.append(json.loads(re.sub(r",\s*([}\]])", r"\1", text), strict=False))
            except ValueError:
                continue
    return found


def _json_text(text: str) -> str:
    text = text.strip()
    for start, end in (("<!--", "-->"), ("<![CDATA[", "]]>"), ("//<![CDATA[", "//]]>")):
        if text.startswith(start) and text.endswith(end):
            text = text[len(start) : -len(end)].strip()
    return text.rstrip(";")


# --- microdata -----------------------------------------------------------------------------


def microdata(tree: Any) -> list[dict[str, Any]]:
    """Top-level items (itemscope without itemprop) with their properties."""
    return [
        _item(element)
        for element in tree.iter()
        if isinstance(element.tag, str)
        and element.get("itemscope") is not None
        and element.get("itemprop") is None
    ]


def _item(element: Any) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for child in _property_elements(element):
        value = _item(child) if child.get("itemscope") is not None else _value(child)
        for name in (child.get("itemprop") or "").split():
            if name in properties:
                existing = properties[name]
                properties[name] = (
                    [*existing, value]
                    if isinstance(existing, list)
                    else [
                        existing,
                        value,
                    ]
                )
            else:
                properties[name] = value
    types = (element.get("itemtype") or "").split()
    return {"type": types[0] if len(types) == 1 else types, "properties": properties}


def _property_elements(scope: Any) -> list[Any]:
    """Elements with itemprop below `scope`, not looking inside nested items."""
    found: list[Any] = []
    stack = list(reversed([c for c in scope if isinstance(c.tag, str)]))
    while stack:
        element = stack.pop()
        if element.get("itemprop") is not None:
            found.append(element)
        if element.get("itemscope") is None:
            stack.extend(reversed([c for c in element if isinstance(c.tag, str)]))
    return found


def _value(element: Any) -> str:
    tag = str(element.tag).lower()
    if tag == "meta":
        return str(element.get("content") or "").strip()
    if tag in _URL_ATTRIBUTES:
        return str(element.get(_URL_ATTRIBUTES[tag]) or "").strip()
    if tag == "time" and element.get("datetime"):
        return str(element.get("datetime")).strip()
    if tag in ("data", "meter") and element.get("value") is not None:
        return str(element.get("value")).strip()
    if element.get("content") is not None:
        return str(element.get("content")).strip()
    return re.sub(r"\s+", " ", element.text_content()).strip()


# --- microformats (h-entry) ----------------------------------------------------------------


# mf2 property -> (prefix, mf2 class, classic microformats class: hAtom, hCard)
_H_ENTRY_PROPERTIES = (
    ("name", "p", "p-name", "entry-title"),
    ("summary", "p", "p-summary", "entry-summary"),
    ("content", "p", "e-content", "entry-content"),
    ("author", "p", "p-author", "author"),
    ("published", "dt", "dt-published", "published"),
    ("updated", "dt", "dt-updated", "updated"),
    ("photo", "u", "u-photo", "photo"),
    ("url", "u", "u-url", "bookmark"),
)


def h_entries(tree: Any) -> list[dict[str, Any]]:
    """h-entry (and classic hentry) posts with the properties a teaser card needs."""
    entries = []
    for entry in _class_elements(tree, "h-entry") or _class_elements(tree, "hentry"):
        classic = "h-entry" not in (entry.get("class") or "").split()
        properties: dict[str, list[Any]] = {}
        for name, prefix, modern, old in _H_ENTRY_PROPERTIES:
            found = _class_elements(entry, old if classic else modern)
            if classic and name == "author":  # hAtom: an author is an hCard
                found = [e for e in found if "vcard" in (e.get("class") or "").split()]
            values = [value for e in found if (value := _mf_value(prefix, e)) is not None]
            if values:
                properties[name] = values
        entries.append({"type": ["h-entry"], "properties": properties})
    return entries


def _class_elements(scope: Any, name: str) -> list[Any]:
    return list(
        scope.xpath(f".//*[contains(concat(' ', normalize-space(@class), ' '), ' {name} ')]")
    )


def _mf_value(prefix: str, element: Any) -> Any:
    classes = (element.get("class") or "").split()
    if "h-card" in classes or "vcard" in classes:
        names = _class_elements(element, "p-name") or _class_elements(element, "fn")
        name = names[0] if names else element
        text = re.sub(r"\s+", " ", name.text_content()).strip()
        return {"type": ["h-card"], "properties": {"name": [text]}}
    if prefix == "dt":
        value = element.get("datetime") or element.get("value") or element.get("title")
        return str(value or element.text_content()).strip()
    if prefix == "u":  # an address, never a caption that happens to carry the class
        address = element.get("href") or element.get("src")
        return str(address).strip() if address else None
    return re.sub(r"\s+", " ", element.text_content()).strip()
