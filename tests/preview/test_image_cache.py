"""The screenshot image cache: each image fetched once, a placeholder of its size offline."""

from __future__ import annotations

from pathlib import Path

from newsletter.preview.images import Image, ImageCache, declared_sizes, placeholder

PNG = Image(b"\x89PNG\r\n\x1a\n-not-really", "image/png")
URL = "https://images.example.org/photo.jpg"


def test_an_image_is_fetched_once_then_read_from_the_cache(tmp_path: Path) -> None:
    asked: list[str] = []

    def fetch(url: str) -> Image:
        asked.append(url)
        return PNG

    first = ImageCache(tmp_path, fetch)
    assert first.image(URL, (264, 176)) == PNG
    assert first.image(URL, (264, 176)) == PNG
    assert ImageCache(tmp_path, fetch).image(URL, (264, 176)) == PNG  # a later run
    assert ImageCache(tmp_path, fetch=None).image(URL, (264, 176)) == PNG  # and offline
    assert asked == [URL] and first.fetched == [URL]


def test_offline_or_unreachable_gives_a_placeholder_of_the_declared_size(tmp_path: Path) -> None:
    def unreachable(url: str) -> Image:
        raise OSError("connection refused")

    expected = placeholder(264, 176)
    assert expected.content_type == "image/svg+xml"
    assert b'width="264" height="176"' in expected.body
    assert ImageCache(tmp_path, fetch=None).image(URL, (264, 176)) == expected
    failing = ImageCache(tmp_path, unreachable)
    assert failing.image(URL, (264, 176)) == expected
    assert failing.fetched == [] and list(tmp_path.iterdir()) == []  # tried again next time


def test_declared_sizes_read_the_emails_img_tags() -> None:
    html = (
        '<img alt="a" src="https://x.example/a.jpg" width="264" style="width:100%">'
        '<img src="https://x.example/b.png" width="180" height="120" alt="b">'
        '<IMG SRC="https://x.example/c.gif" alt="c">'
    )
    assert declared_sizes(html) == {
        "https://x.example/a.jpg": (264, 176),
        "https://x.example/b.png": (180, 120),
        "https://x.example/c.gif": (600, 400),
    }
