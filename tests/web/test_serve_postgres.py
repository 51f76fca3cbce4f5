"""`newsletter serve` on PostgreSQL when the server drops its sessions (a restart, a
failover, a network cut): the next requests get new sessions, not a 503 each forever."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from newsletter.config import load_settings
from tests._postgres import Server
from tests.web._server import serve
from tests.web.test_operations import ONE_CLICK, _link, _status, _workspace


def test_serve_gets_new_sessions_after_the_server_drops_them(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_server: Server,
    postgres_url: str,
) -> None:
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    root = _workspace(tmp_path)
    database = postgres_url.rsplit("/", 1)[1]
    with serve(load_settings(root)) as base:
        assert httpx.get(base + _link("ann@example.org")).status_code == 200
        with postgres_server.admin() as admin:
            dropped = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (database,),
            ).fetchone()
        assert dropped is not None and dropped[0] >= 1  # serve's sessions were cut
        answers = [httpx.post(base + _link("ann@example.org"), data=ONE_CLICK) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert _status(root) == "unsubscribed"
