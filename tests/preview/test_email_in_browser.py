"""The built email in real Chromium at phone and desktop widths, light and dark, with images.

The 20-story issue (every story illustrated) is opened as a client would show it; its
images come from the screenshot image cache, offline: grey placeholders of their size.
"""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from bench.twenty_stories import write_twenty_story_issue
from newsletter.build.output import make_build
from newsletter.build.report_page import Scheme, for_subscriber
from newsletter.config import load_settings
from newsletter.preview.images import Image as CachedImage
from newsletter.preview.images import ImageCache
from newsletter.preview.screenshots import open_email
from newsletter.preview.server import PreviewServer
from newsletter.preview.session import PreviewSession

pytestmark = pytest.mark.browser

PHONES = (320, 375, 414)
OFF_WHITE, MUTED, SLATE_900 = (249, 250, 251), (156, 163, 175), (17, 24, 39)

# Each image with the text column of its story: the next `.nl-title` cell after it.
_IMAGES_AND_TEXT = """() => {
    const titles = [...document.querySelectorAll('td.nl-title > div')];
    return [...document.images].map(img => {
        const text = titles.find(t =>
            img.compareDocumentPosition(t) & Node.DOCUMENT_POSITION_FOLLOWING);
        const i = img.getBoundingClientRect(), t = text.getBoundingClientRect();
        return {src: img.src, fluid: img.closest('.mj-full-width-mobile') !== null,
                loaded: img.complete && img.naturalWidth > 0,
                img: [i.left, i.right, i.top, i.width], text: [t.left, t.right, t.top]};
    });
}"""


@pytest.fixture(scope="module")
def twenty(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("twenty")
    (root / "newsletter.toml").write_text(
        (Path(__file__).resolve().parents[2] / "newsletter.toml").read_text(encoding="utf-8")
    )
    write_twenty_story_issue(root)
    return for_subscriber(make_build(load_settings(root), "twenty").rendered.email_html)


def _open(browser: Browser, html: str, width: int, scheme: Scheme, tmp_path: Path) -> Page:
    return open_email(browser, html, width, scheme, ImageCache(tmp_path / "cache", fetch=None))


def _layout(page: Page) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = page.evaluate(_IMAGES_AND_TEXT)
    return result


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", PHONES)
def test_phones_no_horizontal_scroll_and_images_line_up_with_the_text(
    browser: Browser, twenty: str, tmp_path: Path, width: int, scheme: Scheme
) -> None:
    page = _open(browser, twenty, width, scheme, tmp_path)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") == width
        images = _layout(page)
    finally:
        page.context.close()
    assert len(images) == 20 and all(image["loaded"] for image in images)
    for image in images:
        (left, right, top, image_width), (text_left, text_right, text_top) = (
            image["img"],
            image["text"],
        )
        assert left == pytest.approx(text_left, abs=0.5), image["src"]
        assert text_top > top, "stacked: the text under its image"
        if image["fluid"]:  # lead and grid: the full width of the text column
            assert right == pytest.approx(text_right, abs=0.5), image["src"]
        else:  # list thumbnails stay small, at the text's left edge
            assert image_width == 180
    assert sum(not image["fluid"] for image in images) == 9


def test_desktop_columns_side_by_side_and_images_sized_to_their_column(
    browser: Browser, twenty: str, tmp_path: Path
) -> None:
    page = _open(browser, twenty, 600, "light", tmp_path)
    try:
        assert page.evaluate("document.documentElement.scrollWidth") == 600
        images = _layout(page)
    finally:
        page.context.close()
    widths = [image["img"][3] for image in images]
    assert widths == [552] + [180] * 9 + [264] * 10
    grid = images[10:12]
    assert grid[0]["img"][2] == grid[1]["img"][2] and grid[1]["img"][0] > grid[0]["img"][1]
    for image in images[:1] + images[10:]:
        assert image["img"][0] == pytest.approx(image["text"][0], abs=0.5)


def _rgb(css: str) -> tuple[int, int, int]:
    red, green, blue = (int(n) for n in re.findall(r"\d+", css)[:3])
    return red, green, blue


def _contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    def luminance(rgb: tuple[int, int, int]) -> float:
        channels = [c / 255 for c in rgb]
        linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("width", [375, 600])
def test_dark_mode_keeps_the_hierarchy(
    browser: Browser, twenty: str, tmp_path: Path, width: int
) -> None:
    page = _open(browser, twenty, width, "dark", tmp_path)
    try:

        def style(selector: str, name: str) -> str:
            value: str = page.locator(selector).first.evaluate(f"e => getComputedStyle(e).{name}")
            return value

        background = _rgb(style(".nl-card", "backgroundColor"))
        headline = _rgb(style("h3 a", "color"))
        lead = _rgb(style("h1", "color"))
        muted = _rgb(style(".nl-meta", "color"))
        body = _rgb(style("td.nl-title p:not(.nl-meta)", "color"))
        masthead = _rgb(style(".nl-masthead", "color"))
        rule = _rgb(style(".nl-heading", "borderTopColor"))
        footer_rule = _rgb(style(".nl-rule td", "borderTopColor"))
        button = _rgb(style(".nl-button", "backgroundColor"))
    finally:
        page.context.close()
    assert background == SLATE_900
    assert headline == lead == OFF_WHITE, "headlines off-white, not link blue"
    assert muted == MUTED
    assert len({headline, body, muted, masthead}) == 4, "four distinct levels"
    assert _contrast(muted, background) >= 4.5
    assert _contrast(rule, background) >= 3 and _contrast(footer_rule, background) >= 3
    assert _contrast((255, 255, 255), button) >= 4.5


def test_images_off_alt_text_takes_the_body_font_and_colour(browser: Browser, twenty: str) -> None:
    page = open_email(browser, twenty, 600)  # no image cache: every image is blocked
    try:
        font, color = page.locator("img").first.evaluate(
            "e => [getComputedStyle(e).fontFamily, getComputedStyle(e).color]"
        )
    finally:
        page.context.close()
    assert font.startswith("Helvetica")
    assert _rgb(color) == (31, 41, 51)


def test_screenshot_pages_show_cached_images_fetched_once(browser: Browser, tmp_path: Path) -> None:
    pixel = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )
    asked: list[str] = []

    def fetch(url: str) -> CachedImage:
        asked.append(url)
        return CachedImage(pixel, "image/png")

    html = '<img src="https://images.example.org/p.png" width="10" alt="p">'
    for _ in range(2):
        page = open_email(browser, html, 600, images=ImageCache(tmp_path, fetch))
        try:
            assert page.evaluate("document.images[0].naturalWidth") == 1
        finally:
            page.context.close()
    assert asked == ["https://images.example.org/p.png"]


def test_the_live_preview_serves_the_issues_images_from_the_cache(
    browser: Browser, workspace: Path, tmp_path: Path
) -> None:
    write_twenty_story_issue(workspace)
    session = PreviewSession(load_settings(workspace), "twenty")
    session.start()
    server = PreviewServer(session, port=0, images=ImageCache(tmp_path / "cache", fetch=None))
    server.start()
    page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
    page.context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(server.url) else route.abort()
        ),
    )
    try:
        page.goto(server.url)
        email = page.frame_locator("#email-light")
        images = email.locator("img")
        expect(images).to_have_count(20)
        for index in (0, 1, 19):
            image = images.nth(index)
            expect(image).to_have_attribute("src", re.compile(r"^/images/[0-9a-f]{24}$"))
            image.evaluate("e => e.decode()")
            assert image.evaluate("e => e.naturalWidth") > 0
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url + "images/" + "0" * 24)
        assert refused.value.code == 404, "only the issue's own images are served"
    finally:
        page.context.close()
        server.close()
