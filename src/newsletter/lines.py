"""What counts as a line break in a value that must stay on one line (headers, titles)."""

from __future__ import annotations


def is_multiline(value: str) -> bool:
    """Any separator a mail client may break on (CR, LF, VT, FF, U+0085, U+2028, U+2029 ...).

    `str.splitlines` knows them all; the "x" keeps a trailing separator from going unseen.
    """
    return len((value + "x").splitlines()) > 1
