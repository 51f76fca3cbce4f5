"""Tracking pixels: 1x1 images and web-bug hosts that must never become an article's image."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

PIXEL_MAX = 2
# Hosts (and host prefixes) that serve nothing but counters and web bugs.
TRACKER_HOSTS = re.compile(
    r"(^|\.)(doubleclick\.net|google-analytics\.com|googletagmanager\.com|stats\.wp\.com|"
    r"pixel\.wp\.com|feedblitz\.com|mf\.tm|feedsportal\.com|scorecardresearch\.com|"
    r"quantserve\.com|facebook\.com|analytics\.twitter\.com|bat\.bing\.com|"
    r"pixel\..+)$",
    re.IGNORECASE,
)
# Paths of known trackers and the usual names of transparent spacer images.
TRACKER_PATHS = re.compile(
    r"(^/~r/|^/~4/|^/~ff/|/tr/?$|/pixel(\.gif|\.png|\.php)?$|/1x1\.\w+$|/spacer\.gif$|"
    r"/blank\.gif$|/clear\.gif$|/track(ing)?(/|\.gif$)|/beacon(/|\.gif$))",
    re.IGNORECASE,
)
# Sizes declared in the address itself: ?w=1&h=1, /1x1/, width=1.
TINY_IN_URL = re.compile(
    r"([?&](w|width)=[0-2](?=&|$).*[?&](h|height)=[0-2](&|$)|[/_-][0-2]x[0-2]([/._-]|$))",
    re.IGNORECASE,
)


def declared_tiny(value: object) -> bool:
    """True for a width or height attribute of 0, 1 or 2 pixels ("1", "1px", 1)."""
    if value is None:
        return False
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(px)?\s*$", str(value))
    return match is not None and float(match.group(1)) <= PIXEL_MAX


def is_tracking_image(src: str, width: object = None, height: object = None) -> bool:
    """A web bug, not an illustration: declared at 1-2 px, or from a known tracker."""
    if declared_tiny(width) or declared_tiny(height):
        return True
    parts = urlsplit(src.strip())
    host = (parts.hostname or "").lower()
    if host == "feeds.feedburner.com" or TRACKER_HOSTS.search(host):
        return True
    return bool(TRACKER_PATHS.search(parts.path) or TINY_IN_URL.search(src))
