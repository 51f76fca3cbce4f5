"""A tracking pixel in a feed item or a page must never become the article's image."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from newsletter.collect.readers.images import is_tracking_image
from tests._cli import run
from tests.collect.test_add_cli import make_issue

REAL = "https://cdn.example.org/photos/harbour.jpg"

FEED = """<?xml version="1.0"?>
<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">
<channel><title>News</title><link>https://news.example.org/</link>
<item><title>Sized pixel first</title><link>https://news.example.org/a</link>
<description><![CDATA[<img src="https://news.example.org/count.gif?id=7" width="1" height="1">
<p>Text.</p><img src="{real}" width="640"></p>]]></description></item>
<item><title>Feedburner web bug</title><link>https://news.example.org/b</link>
<description><![CDATA[<p>Text.</p><img src="https://feeds.feedburner.com/~r/News/~4/abc123"
height="1" width="1" alt=""/>]]></description></item>
<item><title>Tiny thumbnail</title><link>https://news.example.org/c</link>
<media:thumbnail url="https://news.example.org/t.gif" width="1" height="1"/>
<media:thumbnail url="{real}" width="300" height="200"/>
<description>Text.</description></item>
<item><title>Tracker hosts only</title><link>https://news.example.org/d</link>
<description><![CDATA[<img src="https://stats.wp.com/b.gif?v=1">
<img src="https://ad.doubleclick.net/ddm/ad/x.gif">
<img src="https://pixel.example-tracker.com/open.png">
<img src="https://www.google-analytics.com/collect?t=event">
<img src="https://assets.feedblitz.com/i/fblike20.png">
<img src="https://mf.tm/feeds/x.gif"><p>Text.</p>]]></description></item>
</channel></rss>
"""

PAGE = """<html><head><title>Page with a web bug</title>
<link rel="canonical" href="https://news.example.org/page">
<meta property="og:image" content="https://news.example.org/open.gif">
<meta property="og:image:width" content="1"><meta property="og:image:height" content="1">
<meta name="description" content="A page whose only declared image is a pixel.">
</head><body><p>Body text.</p></body></html>
"""


def images(path: Path) -> dict[str, str | None]:
    document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return {
        article["title"]: (article.get("image") or {}).get("src")
        for section in document["sections"]
        for article in section["articles"]
    }


def test_feed_items_skip_tracking_pixels(workspace: Path, tmp_path: Path) -> None:
    path = make_issue(workspace, "fresh")
    feed = tmp_path / "news.xml"
    feed.write_text(FEED.format(real=REAL), encoding="utf-8")
    result = run(workspace, "add", "fresh", str(feed))
    assert result.exit_code == 0, result.stderr
    assert images(path) == {
        "Sized pixel first": REAL,
        "Feedburner web bug": None,
        "Tiny thumbnail": REAL,
        "Tracker hosts only": None,
    }


def test_page_whose_declared_image_is_a_pixel_has_no_image(workspace: Path, tmp_path: Path) -> None:
    path = make_issue(workspace, "fresh")
    page = tmp_path / "page.html"
    page.write_text(PAGE, encoding="utf-8")
    result = run(workspace, "add", "fresh", str(page))
    assert result.exit_code == 0, result.stderr
    assert images(path) == {"Page with a web bug": None}


@pytest.mark.parametrize(
    ("src", "width", "height", "tracking"),
    [
        (REAL, None, None, False),
        (REAL, "640", "2", True),
        (REAL, "1px", None, True),
        ("https://cdn.example.org/img/1x1.gif", None, None, True),
        ("https://cdn.example.org/resize?w=1&h=1", None, None, True),
        ("https://cdn.example.org/photos/1200x800.jpg", None, None, False),
        ("https://pixel.quantserve.com/pixel/p-x.gif", None, None, True),
        ("https://www.facebook.com/tr?id=1", None, None, True),
        ("https://pixelated-art.example.org/a.jpg", None, None, False),
    ],
)
def test_what_counts_as_a_tracking_image(
    src: str, width: str | None, height: str | None, tracking: bool
) -> None:
    assert is_tracking_image(src, width, height) is tracking


GIF_1X1 = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


def _png(width: int, height: int) -> bytes:
    import struct
    import zlib

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_an_image_served_at_one_pixel_is_dropped_even_when_it_declares_no_size(
    workspace: Path,
) -> None:
    """A web bug with an innocent name and no size: `add` asks the server how large it is."""
    from tests._local_site import Route, local_site

    routes = {
        "/o.gif": Route(GIF_1X1, "image/gif"),
        "/photo.png": Route(_png(600, 400), "image/png"),
    }
    with local_site(routes) as site:
        feed = f"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>News</title><link>{site.url("/")}</link>
<item><title>Bugged</title><link>https://news.example.org/a</link>
<description><![CDATA[<img src="{site.url("/o.gif")}?u=reader"><p>Text.</p>]]></description>
</item>
<item><title>Illustrated</title><link>https://news.example.org/b</link>
<description><![CDATA[<img src="{site.url("/photo.png")}"><p>Text.</p>]]></description>
</item></channel></rss>"""
        site.routes["/feed.xml"] = Route(feed.encode(), "application/rss+xml")
        path = make_issue(workspace, "fresh")
        outcome = run(workspace, "add", "fresh", site.url("/feed.xml"))
    assert outcome.exit_code == 0, outcome.stderr
    found = images(path)
    assert found["Bugged"] is None
    assert found["Illustrated"] == site.url("/photo.png").replace("http://", "https://")
    assert "a 1-2 px tracking image, not used as the picture" in outcome.stdout + outcome.stderr
