"""What an article or image address may be: an absolute http(s) URL, safe to put in HTML."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit, urlunsplit

_SCHEME_AND_HOST = re.compile(r"^https?://[^\s/?#]+\.[^\s/?#]+", re.IGNORECASE)
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# RFC 3986's reserved and unreserved characters, and % for escapes already made; anything
# else (", <, >, `, {, }, |, \, ^, spaces, non-ASCII) is percent-encoded as UTF-8.
_SAFE = "!#$%&'()*+,/:;=?@[]~-._"


def absolute_web_url(value: str) -> str:
    """The URL with every character that does not belong in one percent-encoded.

    Raises ValueError when it is not an absolute http(s) address.
    """
    value = value.strip()
    if not _SCHEME_AND_HOST.match(value) or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    parts = urlsplit(value)
    try:
        host = parts.netloc.encode("idna").decode("ascii") if not parts.netloc.isascii() else ""
    except UnicodeError:
        raise ValueError(f"{value!r} has a host name that cannot be encoded") from None
    netloc = host or parts.netloc
    if any(c in netloc for c in '"<>`{}|\\^%'):
        raise ValueError(f"{value!r} has characters that cannot be in a host name")
    encoded = [_encode(part) for part in (parts.path, parts.query, parts.fragment)]
    return urlunsplit((parts.scheme.lower(), netloc, *encoded))


def _encode(part: str) -> str:
    return quote(_LONE_PERCENT.sub("%25", part), safe=_SAFE)
