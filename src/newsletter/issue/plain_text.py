"""Plain text for the issue's single-line fields (titles, labels): markup removed, not shown."""

from __future__ import annotations


def strip_tags(text: str) -> str:
    """A title or label as plain text: any markup in it is removed, not shown."""
    if "<" not in text:
        return text
    import html

    import nh3

    return html.unescape(nh3.clean(text, tags=set(), strip_comments=True))
