"""The reader's pages in headless Chromium: the unsubscribe button, signup and confirm."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, expect

from newsletter.config import load_settings
from tests._cli import run
from tests._workspace import add_subscribers, database, sample_workspace
from tests.web._server import serve

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("engine")]


def _status(root: Path, address: str) -> str | None:
    conn = database(root)
    try:
        row = conn.execute("SELECT status FROM subscribers WHERE email = ?", (address,)).fetchone()
    finally:
        conn.close()
    return None if row is None else str(row[0])


def _link_path(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def test_the_unsubscribe_page_then_its_button(tmp_path: Path, browser: Browser) -> None:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, ["ann@example.org", "bob@example.org"])
    assert run(root, "send", "sample", "--backend", "outbox", "--yes").exit_code == 0
    eml = email.message_from_bytes((root / "outbox/sample/ann@example.org.eml").read_bytes())
    link = str(eml["List-Unsubscribe"]).strip("<>")
    with serve(load_settings(root)) as base:
        page = browser.new_page()
        page.goto(base + _link_path(link))
        expect(page.locator("h1")).to_have_text("Unsubscribe")
        expect(page.locator("main")).to_contain_text("ann@example.org")
        assert _status(root, "ann@example.org") == "active"  # showing the page changed nothing
        page.get_by_role("button", name="Unsubscribe").click()
        expect(page.locator("h1")).to_have_text("You are unsubscribed")
        page.close()
    assert _status(root, "ann@example.org") == "unsubscribed"
    assert _status(root, "bob@example.org") == "active"


def test_signup_then_confirm_through_the_mailed_link(tmp_path: Path, browser: Browser) -> None:
    root = sample_workspace(tmp_path / "ws")
    with serve(load_settings(root)) as base:
        page = browser.new_page()
        page.goto(f"{base}/subscribe")
        expect(page.locator("h1")).to_contain_text("Subscribe to The Balkan Brief")
        page.get_by_label("Email address").fill("Dana.Reader@Example.net")
        page.get_by_label("Name").fill("Dana Reader")
        page.get_by_role("button", name="Subscribe").click()
        expect(page.locator("h1")).to_have_text("Check your inbox")
        assert _status(root, "Dana.Reader@example.net") == "pending"

        # The confirmation message went through the configured backend (the outbox).
        (eml_path,) = (root / "outbox" / "_confirmations").glob("*.eml")
        message = email.message_from_bytes(eml_path.read_bytes(), policy=email.policy.default)
        assert message["To"] == "Dana Reader <Dana.Reader@example.net>"
        assert isinstance(message, EmailMessage)
        text = message.get_body(("plain",))
        assert isinstance(text, EmailMessage)
        found = re.search(r"https://\S+/subscribe/confirm\?t=\S+", text.get_content())
        assert found is not None
        link = found.group(0)

        page.goto(base + _link_path(link))
        expect(page.locator("h1")).to_have_text("Confirm your subscription")
        assert _status(root, "Dana.Reader@example.net") == "pending"  # a GET confirms nobody
        page.get_by_role("button", name="Confirm my subscription").click()
        expect(page.locator("h1")).to_have_text("You are subscribed")
        page.close()
    assert _status(root, "Dana.Reader@example.net") == "active"
    assert run(root, "send", "sample", "--backend", "outbox", "--yes").exit_code == 0
    assert (root / "outbox" / "sample" / "dana.reader@example.net.eml").is_file()
