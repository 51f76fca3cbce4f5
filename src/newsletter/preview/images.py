"""The issue's images for screenshots: fetched once into a local cache, else a placeholder.

Screenshots load nothing from the network themselves (slow, flaky); the browser asks this
cache instead. Online, an image is fetched once from its real address and kept under
build/.image-cache/; offline (or when the fetch fails) a neutral grey placeholder of the
size the email declares stands in, so the layout is still the one readers get.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import re
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MAX_IMAGE_BYTES = 5_000_000
FETCH_TIMEOUT_SECONDS = 10.0
PLACEHOLDER_COLOUR = "#d1d5db"
DEFAULT_ASPECT = 2 / 3  # a height for an image that declares only its width (3:2 photos)
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'\b(src|width|height)="([^"]*)"', re.IGNORECASE)


@dataclass(frozen=True)
class Image:
    body: bytes
    content_type: str


Fetcher = Callable[[str], Image]


def fetch_image(url: str) -> Image:
    """GET `url` (https only) and return it if it is an image of at most MAX_IMAGE_BYTES."""
    if not url.startswith("https://"):
        raise OSError(f"not an https address: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "newsletter-preview"})
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT_SECONDS) as response:
        content_type = response.headers.get_content_type()
        body = response.read(MAX_IMAGE_BYTES + 1)
    if not content_type.startswith("image/") or len(body) > MAX_IMAGE_BYTES:
        raise OSError(f"{url} is not an image of at most {MAX_IMAGE_BYTES:,} bytes")
    return Image(body, content_type)


def declared_sizes(html: str) -> dict[str, tuple[int, int]]:
    """Each image address of the email with the size it declares (width, height in px)."""
    sizes: dict[str, tuple[int, int]] = {}
    for tag in _IMG.findall(html):
        attrs = {name.lower(): value for name, value in _ATTR.findall(tag)}
        width = int(attrs["width"]) if attrs.get("width", "").isdigit() else 600
        height = attrs.get("height", "")
        sizes[attrs.get("src", "")] = (
            width,
            int(height) if height.isdigit() else round(width * DEFAULT_ASPECT),
        )
    return sizes


def placeholder(width: int, height: int) -> Image:
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><rect width="100%" height="100%" '
        f'fill="{PLACEHOLDER_COLOUR}"/></svg>'
    )
    return Image(svg.encode("ascii"), "image/svg+xml")


class ImageCache:
    """Images by address: from `directory`, else fetched once, else a placeholder."""

    def __init__(self, directory: Path, fetch: Fetcher | None = fetch_image) -> None:
        self.directory = directory
        self.fetch = fetch  # None: offline, placeholders for what is not cached
        self.fetched: list[str] = []

    def image(self, url: str, size: tuple[int, int]) -> Image:
        body_path, type_path = self._paths(url)
        try:
            return Image(body_path.read_bytes(), type_path.read_text(encoding="ascii").strip())
        except OSError:
            pass
        if self.fetch is None:
            return placeholder(*size)
        try:
            image = self.fetch(url)
        except (OSError, ValueError, http.client.HTTPException):
            return placeholder(*size)  # not kept: the next run online tries again
        self.fetched.append(url)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            body_path.write_bytes(image.body)
            type_path.write_text(image.content_type, encoding="ascii")
        except OSError:
            pass  # a read-only workspace still gets its screenshots
        return image

    def _paths(self, url: str) -> tuple[Path, Path]:
        key = hashlib.sha256(url.encode("utf-8")).hexdigest()
        return self.directory / key, self.directory / f"{key}.type"


def image_key(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]


_SRCDOC = re.compile(r'srcdoc="([^"]*)"')
_IMG_SRC = re.compile(r'(<img\b[^>]*?\bsrc=")([^"]*)(")', re.IGNORECASE)


def local_images(page: str, prefix: str = "/images/") -> tuple[str, dict[str, str]]:
    """`page` with the images of its embedded emails (iframe srcdoc) served from `prefix`.

    Returns the page and the image addresses by key, for the server to answer from a cache.
    """
    urls: dict[str, str] = {}

    def local_src(match: re.Match[str]) -> str:
        url = html.unescape(match.group(2))
        if not url.startswith(("https://", "http://")):
            return match.group(0)
        key = image_key(url)
        urls[key] = url
        return f"{match.group(1)}{prefix}{key}{match.group(3)}"

    def rewrite(match: re.Match[str]) -> str:
        email = _IMG_SRC.sub(local_src, html.unescape(match.group(1)))
        return f'srcdoc="{html.escape(email, quote=True)}"'

    return _SRCDOC.sub(rewrite, page), urls
