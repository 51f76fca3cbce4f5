"""Clearly marked example.org addresses for articles whose source gives no URL."""

from __future__ import annotations

import re
import unicodedata

PLACEHOLDER_BASE = "https://example.org/placeholder/"


def slugify(text: str, max_length: int = 80) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-") or "article"


def placeholder_url(title: str) -> str:
    """A stable example.org URL derived from the title, so re-adding a page dedupes."""
    return PLACEHOLDER_BASE + slugify(title)


def is_placeholder(url: str) -> bool:
    return url.startswith(PLACEHOLDER_BASE)
