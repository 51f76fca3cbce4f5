"""Shared fixtures: an isolated environment and a copy of the sample workspace."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from newsletter.errors import UserError
from newsletter.preview.screenshots import find_chromium, launch_browser
from tests._postgres import Server, running_server

REPO = Path(__file__).resolve().parent.parent
ENGINES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that asks for `engine` runs once on SQLite and once on PostgreSQL, unless it
    is marked `sqlite_only` (it is about the SQLite file itself)."""
    if "engine" in metafunc.fixturenames:
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("engine", ENGINES[:1] if only_sqlite else ENGINES, indirect=True)


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
        "DATABASE_URL",
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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """One throwaway PostgreSQL cluster for the session, started on first use."""
    with running_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: Server) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this test."""
    with postgres_server.fresh_database() as url:
        yield url


@pytest.fixture
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The workspace database engine: "sqlite" (the default file) or "postgresql"
    (DATABASE_URL set to a fresh database, for this process and the ones it starts)."""
    name = str(request.param)
    if name == "postgresql":
        server: Server = request.getfixturevalue("postgres_server")
        with server.fresh_database() as url:
            monkeypatch.setenv("DATABASE_URL", url)
            yield name
        return
    yield name
