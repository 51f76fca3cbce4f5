"""Article text reaches the email only through here: sanitised HTML or plain text."""

from __future__ import annotations

import re

INLINE_TAGS = frozenset({"a", "b", "strong", "i", "em", "br", "p"})
_BLOCK = re.compile(r"\n\s*\n")
_ANCHOR_WITHOUT_HREF = re.compile(r"<a>(.*?)</a>", re.DOTALL)


def sanitize_fragment(text: str) -> str:
    """Teaser/intro text (plain or light HTML) as safe HTML paragraphs.

    Only emphasis, line breaks and https/mailto links survive; scripts, styles, event
    handlers and tracking pixels are removed.
    """
    import nh3

    if not text.strip():
        return ""
    cleaned = nh3.clean(
        text,
        tags=set(INLINE_TAGS),
        attributes={"a": {"href"}},
        url_schemes={"https", "http", "mailto"},
        link_rel=None,
        strip_comments=True,
    )
    # nh3 drops unsafe hrefs (javascript: ...) but keeps the <a>: unwrap what is left.
    cleaned = _ANCHOR_WITHOUT_HREF.sub(r"\1", cleaned)
    if "<p>" in cleaned:
        return cleaned
    return "".join(f"<p>{part.strip()}</p>" for part in _BLOCK.split(cleaned) if part.strip())


def to_text(text: str) -> str:
    """Plain text of a teaser/intro for the text part."""
    if "<" not in text and "&" not in text:
        return text
    from inscriptis import get_text

    return str(get_text(sanitize_fragment(text))).strip()
