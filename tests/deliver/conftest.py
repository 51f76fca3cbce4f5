"""Fixtures of the delivery tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.db import Connection, open_database
from tests._workspace import database_target


@pytest.fixture
def conn(engine: str, tmp_path: Path) -> Iterator[Connection]:
    """The workspace database on each engine (see the `engine` fixture)."""
    connection = open_database(database_target(tmp_path))
    yield connection
    connection.close()
