"""Running beside cron on one database, and behind a proxy."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from newsletter.audience.unsubscribe import UnsubscribeLinks
from newsletter.config import load_settings
from newsletter.db import rolled_back
from tests._workspace import (
    SECRET,
    add_subscribers,
    database,
    query,
    read_only_view,
    sample_workspace,
    write_env,
)
from tests.web._server import serve

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def _workspace(tmp_path: Path, web: str = "") -> Path:
    root = sample_workspace(tmp_path / "ws")
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    if web:
        config = root / "newsletter.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[web]\n", f"[web]\n{web}\n", 1), encoding="utf-8")
    add_subscribers(root, ["ann@example.org"])
    return root


def _link(address: str) -> str:
    links = UnsubscribeLinks("https://example.org/unsubscribe", "balkan-brief", SECRET)
    return f"/unsubscribe?t={links.token(address, 'sample')}"


def _status(root: Path) -> str:
    conn = database(root)
    try:
        (status,) = conn.execute(
            "SELECT status FROM subscribers WHERE email_key = 'ann@example.org'"
        ).fetchone()
    finally:
        conn.close()
    return str(status)


def test_a_database_held_by_a_send_gets_a_503_and_nothing_half_written(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with serve(load_settings(root), busy_timeout_ms=300) as base:
        holder = database(root)
        try:
            with rolled_back(holder):  # the write lock held, as a long write holds it
                busy = httpx.post(base + _link("ann@example.org"), data=ONE_CLICK)
        finally:
            holder.close()
        after = httpx.post(base + _link("ann@example.org"), data=ONE_CLICK)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "30"
    assert "Traceback" not in busy.text
    assert after.status_code == 200
    assert _status(root) == "unsubscribed"


@pytest.mark.sqlite_only
def test_a_read_only_database_serves_pages_and_refuses_writes_with_503(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with serve(load_settings(root)):
        pass  # created and migrated while writable
    with read_only_view(root, tmp_path) as view, serve(load_settings(view)) as base:
        page = httpx.get(base + _link("ann@example.org"))
        refused = httpx.post(base + _link("ann@example.org"), data=ONE_CLICK)
        archive = httpx.get(f"{base}/archive/")
    assert page.status_code == 200
    assert refused.status_code == 503 and "Nothing was changed" in refused.text
    assert archive.status_code == 200
    assert _status(root) == "active"


@pytest.mark.parametrize(
    ("trusted", "recorded"), [('["127.0.0.1"]', "203.0.113.7"), ("[]", "127.0.0.1")]
)
def test_forwarded_addresses_count_only_from_trusted_proxies(
    tmp_path: Path, trusted: str, recorded: str
) -> None:
    root = _workspace(tmp_path, f"trusted_proxies = {trusted}")
    with serve(load_settings(root)) as base, httpx.Client() as client:
        form = client.get(f"{base}/subscribe")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token is not None
        client.post(
            f"{base}/subscribe",
            data={"csrf": token.group(1), "email": "new@example.org"},
            headers={"X-Forwarded-For": "203.0.113.7"},
        )
    assert query(root, "SELECT ip FROM consent") == [(recorded,)]


def test_routes_live_under_the_path_of_the_base_url(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('"https://example.org"\n', '"https://example.org/news"\n'))
    settings = load_settings(root)
    assert settings.file.newsletter.unsubscribe_url == "https://example.org/news/unsubscribe"
    with serve(settings) as base:
        under = httpx.get(f"{base}/news/subscribe")
        outside = httpx.get(f"{base}/subscribe")
    assert under.status_code == 200 and outside.status_code == 404


def test_a_client_that_leaves_mid_body_leaves_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import socket
    import time
    from urllib.parse import urlsplit

    root = _workspace(tmp_path)
    with serve(load_settings(root)) as base:
        port = urlsplit(base).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.sendall(
                b"POST /subscribe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\r\nab"
            )
        time.sleep(0.5)
        assert httpx.get(f"{base}/healthz").status_code == 200
    errors = [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]
    assert errors == []
    assert "Traceback" not in caplog.text
