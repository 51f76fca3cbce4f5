"""Shared fixtures: an isolated environment and a copy of the sample workspace."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from newsletter.errors import UserError
from newsletter.preview.screenshots import find_chromium, launch_browser

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """No real keys, no user state, no proxies: tests see only what they set up."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for name in (
        "SENDGRID_API_KEY",
        "SENDGRID_API_HOST",
        "NEWSLETTER_WORKSPACE",
        "NEWSLETTER_UNSUBSCRIBE_SECRET",
        "SMTP_HOST",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "XDG_CACHE_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A fresh copy of the repository's workspace: newsletter.toml and the sample issue."""
    root = tmp_path / "workspace"
    root.mkdir()
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    shutil.copytree(REPO / "issues" / "sample", root / "issues" / "sample")
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (the `browser` marker's tests)."""
    try:
        executable = find_chromium()
    except UserError as error:
        pytest.fail(f"{error.line()} (or deselect these tests with -m 'not browser')")
    with launch_browser(executable) as chromium:
        yield chromium
