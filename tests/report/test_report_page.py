"""The click-map page in headless Chromium: counts beside the right links."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests._cli import run
from tests.report.conftest import LEAD, SECOND

pytestmark = pytest.mark.browser


def test_the_click_map_shows_each_links_clicks_beside_it(
    reported: Path, browser: Browser, tmp_path: Path
) -> None:
    target = tmp_path / "results.html"
    outcome = run(reported, "report", "sample", "--html", str(target))
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[-1] == f"wrote {target}"
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    page.route(
        "**/*",
        lambda route: (
            route.abort()
            if not route.request.url.startswith(("file:", "about:", "data:"))
            else route.continue_()
        ),
    )  # no network needed
    page.goto(target.as_uri())
    email = page.frame_locator("#email")
    lead = email.locator(f'a[href^="{LEAD}"]').first
    assert lead.get_attribute("data-unique-clicks") == "2"
    badge = email.locator(f'a[href^="{LEAD}"] + span.nl-clickmap').first
    assert badge.inner_text().startswith("2 · ")
    assert email.locator(f'a[href^="{SECOND}"]').first.get_attribute("data-unique-clicks") == "1"
    unsubscribe = email.locator('a[href="https://unsubscribe.example.invalid/preview-only"]')
    assert unsubscribe.first.get_attribute("data-unique-clicks") == "1"
    assert page.locator('tr[data-step="delivered"]').inner_text().count("5") >= 1
    assert page.locator("svg").count() >= 1
    page.screenshot(path=str(tmp_path / "results.png"), full_page=True)
    page.close()
