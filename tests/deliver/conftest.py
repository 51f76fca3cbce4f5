"""Fixtures of the delivery tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.db import Connection, open_database
from tests._workspace import database_target
from tests.sendgrid_stub import TEST_API_KEY, SendGridStub, bypass_proxy_for_loopback


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests to the local stand-in never go through a proxy the machine names."""
    bypass_proxy_for_loopback(monkeypatch)


@pytest.fixture
def stub() -> Iterator[SendGridStub]:
    """The SendGrid stand-in, in this process, taking the tests' key."""
    with SendGridStub(TEST_API_KEY) as running:
        yield running


@pytest.fixture
def conn(engine: str, tmp_path: Path) -> Iterator[Connection]:
    """The workspace database on each engine (see the `engine` fixture)."""
    connection = open_database(database_target(tmp_path))
    yield connection
    connection.close()
