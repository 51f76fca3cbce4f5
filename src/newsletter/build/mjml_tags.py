"""MJML source as mjml-python needs it: the known tag set, attributes it cannot escape."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

KNOWN_MJML_TAGS = frozenset(
    {
        "mjml", "mj-head", "mj-body", "mj-include",
        "mj-attributes", "mj-all", "mj-class", "mj-breakpoint", "mj-font",
        "mj-html-attributes", "mj-html-attribute", "mj-selector",
        "mj-preview", "mj-style", "mj-title",
        "mj-accordion", "mj-accordion-element", "mj-accordion-text", "mj-accordion-title",
        "mj-button", "mj-carousel", "mj-carousel-image", "mj-column", "mj-divider",
        "mj-group", "mj-hero", "mj-image", "mj-navbar", "mj-navbar-link", "mj-raw",
        "mj-section", "mj-social", "mj-social-element", "mj-spacer", "mj-table",
        "mj-text", "mj-wrapper",
    }
)  # fmt: skip
_TAG = re.compile(r"</?(mj-[a-zA-Z0-9-]+|mjml)\b")


def find_unknown_tags(source: str) -> Iterator[tuple[str, int]]:
    """(tag, 1-based line) for every opening or closing tag MJML does not define."""
    for match in _TAG.finditer(source):
        name = match.group(1)
        # mj-attributes children are named after the element they configure.
        if name not in KNOWN_MJML_TAGS:
            yield name, source.count("\n", 0, match.start()) + 1


_MARKUP_TAG = re.compile(r"<[a-zA-Z][^<>]*>")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_TITLE = re.compile(r"<mj-title>.*?</mj-title>", re.DOTALL)


def ascii_attributes(source: str) -> str:
    """NFC text whose tag attributes carry non-ASCII characters as character references.

    mjml-python writes some characters of attribute values (a no-break space, a combining
    accent, an emoji's variation selector) as Rust escapes such as `\\u{a0}`; references
    pass through it untouched and every client decodes them.
    """
    normalised = unicodedata.normalize("NFC", source)
    encoded = _MARKUP_TAG.sub(lambda tag: _references(tag.group()), normalised)
    # mjml-python also copies <mj-title> into the body's aria-label attribute.
    return _TITLE.sub(lambda title: _references(title.group()), encoded)


def _references(text: str) -> str:
    return _NON_ASCII.sub(lambda char: f"&#x{ord(char.group()):x};", text)
