"""How large an image really is, read from the first bytes of its file.

A web bug often declares no size at all; `add` then asks the server for the image's first
few kilobytes (only for sources it fetched itself, so never for saved files read offline)
and reads the pixel size from the GIF, PNG, JPEG or WebP header.
"""

from __future__ import annotations

import re
import struct
from urllib.parse import urlsplit

from newsletter.collect.readers.images import PIXEL_MAX
from newsletter.errors import SourceError

PROBE_BYTES = 64 * 1024
PROBE_TIMEOUT = 5.0


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from an image's header, or None when it is not one we can read."""
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if kind == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


_PHOTO = re.compile(r"\.(jpe?g|png|webp|avif)$", re.IGNORECASE)


def worth_probing(url: str) -> bool:
    """Web bugs hide behind .gif files, addresses with a query, or no extension at all; a
    plain photo file (harbour.jpg) is not asked about, to keep `add` quick."""
    parts = urlsplit(url)
    return bool(parts.query) or not _PHOTO.search(parts.path)


def is_served_tiny(url: str, timeout: float | None = None) -> bool:
    """True when the image at `url` is 1-2 px wide or high; False when unknown or larger."""
    from newsletter.collect.fetch import fetch

    try:
        fetched = fetch(url, timeout=timeout or PROBE_TIMEOUT, max_bytes=PROBE_BYTES)
    except SourceError:
        return False  # too large to be a pixel, or unreachable: keep the editor's image
    size = header_size(fetched.content)
    return size is not None and min(size) <= PIXEL_MAX
