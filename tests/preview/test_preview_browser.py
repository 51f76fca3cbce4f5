"""The preview in a real headless Chromium: the live page, its live reload, the screenshots."""

from __future__ import annotations

import base64
import http.server
import re
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect

from newsletter.build.output import make_build, write_build
from newsletter.build.report_page import for_subscriber
from newsletter.config import load_settings
from newsletter.preview.screenshots import SCALE, open_email
from newsletter.preview.server import PREVIEW_FILE, PreviewServer
from newsletter.preview.session import PreviewSession
from tests.conftest import REPO
from tests.preview._latency import save_and_wait

pytestmark = pytest.mark.browser

REBUILD_MS = 15_000
SLATE_900, GREY_100 = "rgb(17, 24, 39)", "rgb(243, 244, 246)"  # the sample's dark and light body


def _loopback_only(route: Route) -> None:
    host = urlsplit(route.request.url).hostname
    if host in {"127.0.0.1", "localhost"} or route.request.url.startswith("file:"):
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def server(workspace: Path) -> Iterator[PreviewServer]:
    session = PreviewSession(load_settings(workspace), "sample")
    session.start()
    preview = PreviewServer(session, port=0)
    preview.start()
    yield preview
    preview.close()


def _page(browser: Browser, **context: Any) -> Page:
    page = browser.new_context(**context).new_page()
    page.context.route("**/*", _loopback_only)
    return page


@pytest.fixture
def page(browser: Browser, server: PreviewServer) -> Iterator[Page]:
    page = _page(browser, viewport={"width": 1300, "height": 900})
    page.goto(server.url)
    yield page
    page.context.close()


def _frame_width(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not displayed"
    return box["width"]


def _body_background(page: Page, frame: str) -> str:
    color: str = (
        page.frame_locator(frame)
        .locator(".nl-body")
        .evaluate("element => getComputedStyle(element).backgroundColor")
    )
    return color


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- the live page -------------------------------------------------------------------------


def test_page_shows_the_email_headers_size_and_checks(page: Page) -> None:
    expect(page).to_have_title("Preview · Albania raid on Ashraf 3 sparks protests across Europe")
    email = page.frame_locator("#email-light")
    expect(email.locator("text=Hi Alex,")).to_be_visible()
    expect(email.locator("a", has_text="Unsubscribe")).to_have_attribute(
        "href", "https://unsubscribe.example.invalid/preview-only"
    )
    expect(page.locator("#header-subject")).to_have_text(
        "Albania raid on Ashraf 3 sparks protests across Europe"
    )
    expect(page.locator("#header-list-unsubscribe")).to_have_text(
        "<https://unsubscribe.example.invalid/preview-only>"
    )
    expect(page.locator("#size")).to_contain_text(
        re.compile(r"\b\d{2},\d{3} bytes of Gmail's\s+102,000-byte clip limit")
    )
    expect(page.locator("#checks")).to_contain_text("[placeholder]")
    expect(page.locator("#email-dark")).to_be_hidden()


def test_width_toggle_changes_the_frame_width(page: Page) -> None:
    assert _frame_width(page, "#email-light") == 600
    page.click("#width-375")
    assert _frame_width(page, "#email-light") == 375
    expect(page.locator("#width-375")).to_have_attribute("aria-pressed", "true")
    page.click("#width-800")
    assert _frame_width(page, "#email-light") == 800
    page.click("#width-600")
    assert _frame_width(page, "#email-light") == 600


def test_mobile_width_stacks_the_grid_columns(page: Page) -> None:
    def first_two_cards() -> list[dict[str, float]]:
        cards = page.frame_locator("#email-light").locator(".mj-column-per-50")
        return [
            cards.nth(index).evaluate("e => e.getBoundingClientRect().toJSON()") for index in (0, 1)
        ]

    left, right = first_two_cards()
    assert left["top"] == right["top"] and right["left"] >= left["right"]
    page.click("#width-375")
    upper, lower = first_two_cards()
    assert upper["left"] == lower["left"] and lower["top"] >= upper["bottom"]


def test_text_view_shows_the_text_part(page: Page, server: PreviewServer) -> None:
    page.click("#view-text")
    expect(page.locator("#text-part")).to_be_visible()
    expect(page.locator("#email-light")).to_be_hidden()
    assert server.session.build is not None
    expected = for_subscriber(server.session.build.rendered.text)
    assert page.locator("#text-part").inner_text() == expected
    assert "Hi Alex," in expected and "%%" not in expected
    page.click("#view-source")
    expect(page.locator("#html-source")).to_contain_text("<!doctype html>")
    expect(page.locator("#text-part")).to_be_hidden()


def test_dark_mode_is_emulated_whatever_the_editors_system_uses(
    browser: Browser, server: PreviewServer
) -> None:
    page = _page(browser, viewport={"width": 1300, "height": 900}, color_scheme="dark")
    try:
        page.goto(server.url)
        # The light frame stays light on a dark system: its dark queries are switched off.
        assert _body_background(page, "#email-light") == GREY_100
        page.check("#dark-toggle")
        expect(page.locator("#email-dark")).to_be_visible()
        expect(page.locator("#email-light")).to_be_hidden()
        assert _body_background(page, "#email-dark") == SLATE_900
        assert "dark=1" in page.url, "the choice is kept in the URL across reloads"
    finally:
        page.context.close()


def test_editing_the_issue_updates_the_page_by_itself(page: Page, workspace: Path) -> None:
    page.click("#width-375")
    page.evaluate("window.notReloaded = true")
    _replace(
        workspace / "issues" / "sample" / "issue.yaml",
        'subject: "Albania raid on Ashraf 3',
        'subject: "Live edit: Albania raid on Ashraf 3',
    )
    expect(page.locator("#header-subject")).to_have_text(
        "Live edit: Albania raid on Ashraf 3 sparks protests across Europe", timeout=REBUILD_MS
    )
    assert page.evaluate("window.notReloaded") is True, "updated in place, not reloaded"
    assert _frame_width(page, "#email-light") == 375, "the chosen width stays"
    expect(page.frame_locator("#email-light").locator("[role=article]")).to_have_attribute(
        "aria-label", "Live edit: Albania raid on Ashraf 3 sparks protests across Europe"
    )


@pytest.mark.parametrize("slug", ["sample", "twenty"])
def test_a_save_shows_on_the_page_and_the_latency_is_recorded(
    browser: Browser, workspace: Path, slug: str, record_property: Any
) -> None:
    if slug == "twenty":
        from bench.twenty_stories import write_twenty_story_issue

        write_twenty_story_issue(workspace)
    session = PreviewSession(load_settings(workspace), slug)
    session.start()
    preview = PreviewServer(session, port=0)
    preview.start()
    page = _page(browser, viewport={"width": 1300, "height": 900})
    try:
        page.goto(preview.url)
        issue = workspace / "issues" / slug / "issue.yaml"
        latencies = []
        prefix = "subject: " if slug == "twenty" else 'subject: "'
        old = f"{prefix}Albania raid"
        for n in (1, 2, 3):
            subject = f"Edit {n} of Albania raid"
            new = f"{prefix}{subject}"
            latencies.append(save_and_wait(page, issue, old, new, subject, REBUILD_MS))
            old = new
        # Recorded, not asserted: timings belong to bench/bench_preview.py.
        record_property("save_to_page_ms", latencies)
        print(f"{slug}: save -> page updated in {', '.join(f'{ms:.0f}' for ms in latencies)} ms")
    finally:
        page.context.close()
        preview.close()


def test_a_burst_of_saves_with_a_half_written_file_never_shows_its_error(
    page: Page, workspace: Path, server: PreviewServer
) -> None:
    page.evaluate(
        """() => {
      window.__errors = 0;
      new MutationObserver(() => {
        if (document.getElementById("build-error")) window.__errors++;
      }).observe(document.body, { childList: true, subtree: true });
    }"""
    )
    issue = workspace / "issues" / "sample" / "issue.yaml"
    good = issue.read_text(encoding="utf-8")
    fixed = good.replace('subject: "Albania raid', 'subject: "Saved twice: Albania raid', 1)
    for _ in range(3):  # an editor that truncates, writes half, then the rest
        issue.write_text("", encoding="utf-8")
        issue.write_text(fixed[: len(fixed) // 3], encoding="utf-8")
        time.sleep(0.05)
        issue.write_text(fixed, encoding="utf-8")
        time.sleep(0.05)
    expect(page.locator("#header-subject")).to_have_text(
        "Saved twice: Albania raid on Ashraf 3 sparks protests across Europe", timeout=REBUILD_MS
    )
    time.sleep(0.6)  # past the grace a held error would have waited
    assert page.evaluate("window.__errors") == 0
    assert server.session.state()["ok"] is True


def test_template_error_shows_on_the_page_and_the_preview_recovers(
    page: Page, workspace: Path, server: PreviewServer
) -> None:
    # The workspace has no templates/ yet: the preview must notice the folder appear.
    header = workspace / "templates" / "partials" / "header.mjml.j2"
    header.parent.mkdir(parents=True)
    header.write_text("<mj-section>{% if %}</mj-section>\n", encoding="utf-8")
    error = page.locator("#build-error")
    expect(error).to_contain_text("template syntax error", timeout=REBUILD_MS)
    expect(error).to_contain_text("templates/partials/header.mjml.j2:1")
    expect(error).to_contain_text("Below is the last build that worked.")
    expect(page.frame_locator("#email-light").locator("text=Hi Alex,")).to_be_visible()

    builtin = resources.files("newsletter") / "templates" / "partials" / "header.mjml.j2"
    repaired = builtin.read_text(encoding="utf-8").replace(
        '<p class="nl-masthead">{{ newsletter.name }}</p>', '<p class="nl-masthead">Repaired</p>'
    )
    assert "Repaired" in repaired
    header.write_text(repaired, encoding="utf-8")
    expect(page.frame_locator("#email-light").locator(".nl-masthead")).to_have_text(
        "Repaired", timeout=REBUILD_MS
    )
    expect(error).to_have_count(0)
    assert server.session.state()["ok"] is True


def test_static_report_shows_all_views_from_a_file(browser: Browser, workspace: Path) -> None:
    settings = load_settings(workspace)
    write_build(settings, make_build(settings, "sample"))
    page = _page(browser, viewport={"width": 1400, "height": 900})
    try:
        page.goto((workspace / "build" / "sample" / PREVIEW_FILE).as_uri())
        assert _frame_width(page, "#email-desktop") == 600
        assert _frame_width(page, "#email-mobile") == 375
        assert _body_background(page, "#email-dark") == SLATE_900
        expect(page.frame_locator("#email-mobile").locator("text=Hi Alex,")).to_be_visible()
        expect(page.locator("#text-part")).to_contain_text("Hi Alex,")
        # The frames grow to their email's height, so the report scrolls as one page.
        height = page.locator("#email-mobile").evaluate(
            "f => f.contentDocument.documentElement.scrollHeight"
        )
        assert abs(_frame_height(page, "#email-mobile") - height) <= 1
    finally:
        page.context.close()


def _frame_height(page: Page, selector: str) -> float:
    box = page.locator(selector).bounding_box()
    assert box is not None
    return box["height"]


# --- screenshots ---------------------------------------------------------------------------


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", f"{path} is no PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def _pixel_stats(browser: Browser, *paths: Path) -> list[dict[str, float]]:
    """Mean and standard deviation of luminance, decoded by the browser's own PNG decoder."""
    page = browser.new_page()
    try:
        sources = [
            "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()
            for path in paths
        ]
        stats: list[dict[str, float]] = page.evaluate(
            """async (sources) => Promise.all(sources.map(async (source) => {
                const image = new Image(); image.src = source; await image.decode();
                const canvas = new OffscreenCanvas(image.width, image.height);
                const context = canvas.getContext("2d"); context.drawImage(image, 0, 0);
                const data = context.getImageData(0, 0, image.width, image.height).data;
                let sum = 0, squares = 0, count = data.length / 4;
                for (let i = 0; i < data.length; i += 4) {
                    const y = 0.2126 * data[i] + 0.7152 * data[i + 1] + 0.0722 * data[i + 2];
                    sum += y; squares += y * y;
                }
                const mean = sum / count;
                return { mean, std: Math.sqrt(squares / count - mean * mean) };
            }))""",
            sources,
        )
        return stats
    finally:
        page.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One real `newsletter preview --screenshot` run of the sample, shared by the checks below.

    A subprocess: the command drives its own Playwright, which cannot nest in this one.
    """
    root = tmp_path_factory.mktemp("shots-workspace")
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    shutil.copytree(REPO / "issues" / "sample", root / "issues" / "sample")
    target = root / "shots"
    command = [sys.executable, "-c", "from newsletter.cli import main; main()"]
    result = subprocess.run(
        [
            *command,
            *("--workspace", str(root), "preview", "sample", "--screenshot", str(target)),
            "--offline",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    names = ("600", "375", "600-dark", "375-dark")
    assert result.stdout.splitlines() == [
        "wrote build/sample/preview.html",
        *(f"wrote {target / f'sample-{name}.png'}" for name in names),
    ]
    assert (root / "build" / "sample" / PREVIEW_FILE).is_file()
    return {path.stem.removeprefix("sample-"): path for path in target.glob("*.png")}


def test_screenshots_have_the_expected_widths(screenshots: dict[str, Path]) -> None:
    assert sorted(screenshots) == ["375", "375-dark", "600", "600-dark"]
    sizes = {name: _png_size(path) for name, path in screenshots.items()}
    assert sizes["600"][0] == sizes["600-dark"][0] == 600 * SCALE
    assert sizes["375"][0] == sizes["375-dark"][0] == 375 * SCALE
    # Full page, not one screen: the sample is thousands of CSS pixels long.
    assert all(height > 2000 * SCALE for _, height in sizes.values())
    # Stacked columns and narrower text make the phone version much longer.
    assert sizes["375"][1] / 375 > 1.2 * sizes["600"][1] / 600


def test_screenshots_are_not_blank_and_dark_differs(
    browser: Browser, screenshots: dict[str, Path]
) -> None:
    light, mobile, dark, mobile_dark = _pixel_stats(
        browser, *(screenshots[name] for name in ("600", "375", "600-dark", "375-dark"))
    )
    for stats in (light, mobile, dark, mobile_dark):
        assert stats["std"] > 10, f"looks blank: {stats}"
    assert abs(dark["mean"] - light["mean"]) > 5, (light, dark)
    assert abs(mobile_dark["mean"] - mobile["mean"]) > 5, (mobile, mobile_dark)


def test_screenshot_pages_stack_the_grid_on_a_phone(browser: Browser, workspace: Path) -> None:
    settings = load_settings(workspace)
    html = for_subscriber(make_build(settings, "sample").rendered.email_html)
    positions = {}
    for width in (600, 375):
        page = open_email(browser, html, width)
        try:
            cards = page.locator(".mj-column-per-50")
            positions[width] = [
                cards.nth(index).evaluate("e => e.getBoundingClientRect().toJSON()")
                for index in (0, 1)
            ]
            assert page.evaluate("document.documentElement.clientWidth") == width
        finally:
            page.context.close()
    left, right = positions[600]
    assert left["top"] == right["top"] and right["left"] >= left["right"], "side by side at 600"
    upper, lower = positions[375]
    assert upper["left"] == lower["left"] and lower["top"] >= upper["bottom"], "stacked at 375"


class _ImageServer(http.server.BaseHTTPRequestHandler):
    """A loopback image host that records what was asked of it."""

    seen: ClassVar[list[str]] = []
    PIXEL = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    )

    def do_GET(self) -> None:
        self.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(self.PIXEL)))
        self.end_headers()
        self.wfile.write(self.PIXEL)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_screenshot_pages_load_loopback_only(browser: Browser) -> None:
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ImageServer) as images:
        threading.Thread(target=images.serve_forever, daemon=True).start()
        local = f"http://127.0.0.1:{images.server_address[1]}/local.png"
        page = open_email(browser, f'<img id="local" src="{local}" alt="">', 600)
        try:
            assert _ImageServer.seen == ["/local.png"]
            assert page.evaluate("document.images[0].naturalWidth") == 1
            # A remote image is refused by the page's own rule, not left to the network.
            with page.expect_event("requestfailed") as refused:
                page.evaluate(
                    "document.body.insertAdjacentHTML('beforeend',"
                    ' \'<img src="https://images.example.org/photo.png" alt="">\')'
                )
            assert refused.value.url == "https://images.example.org/photo.png"
            assert (refused.value.failure or "").startswith("net::ERR_BLOCKED_BY_CLIENT")
        finally:
            page.context.close()
            images.shutdown()


def test_dark_screenshot_applies_the_emails_dark_css(browser: Browser, workspace: Path) -> None:
    settings = load_settings(workspace)
    html = for_subscriber(make_build(settings, "sample").rendered.email_html)
    for scheme, expected in (("light", GREY_100), ("dark", SLATE_900)):
        page = open_email(browser, html, 600, scheme)  # type: ignore[arg-type]
        try:
            color = page.locator(".nl-body").evaluate("e => getComputedStyle(e).backgroundColor")
            assert color == expected, scheme
        finally:
            page.context.close()
