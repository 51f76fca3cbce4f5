"""The MJML 4 tag set, to catch tags mjml-python would copy through silently."""

from __future__ import annotations

import re
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
