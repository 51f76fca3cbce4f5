"""/unsubscribe through a real uvicorn server: one-click as Gmail sends it, the page and
its button, bad tokens, and an unsubscribe taken while a send runs."""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from newsletter.audience.unsubscribe import UnsubscribeLinks
from newsletter.config import load_settings
from tests._cli import run
from tests._workspace import (
    SECRET,
    add_subscribers,
    database,
    numbered,
    sample_workspace,
    stub_env,
    write_env,
)
from tests.sendgrid_stub import StubProcess, bypass_proxy_for_loopback
from tests.web._server import serve

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")

PEOPLE = ["ann@example.org", "bob@example.org", "carla@example.org"]
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
NEWSLETTER = Path(sys.executable).parent / "newsletter"


def _rehearsed(tmp_path: Path) -> Path:
    """The sample sent to the outbox for three subscribers (no secret set: the local key)."""
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, PEOPLE)
    assert run(root, "send", "sample", "--backend", "outbox", "--yes").exit_code == 0
    return root


def _list_unsubscribe(root: Path, address: str, issue: str = "sample") -> str:
    """The List-Unsubscribe URL of the .eml the outbox wrote for `address`."""
    message = email.message_from_bytes((root / "outbox" / issue / f"{address}.eml").read_bytes())
    return str(message["List-Unsubscribe"]).strip("<>")


def _local(base: str, link: str) -> str:
    """The link as our local server answers it (the path and query of the public link)."""
    parts = urlsplit(link)
    return f"{base}{parts.path}?{parts.query}"


def _statuses(root: Path) -> dict[str, tuple[str, str | None]]:
    conn = database(root)
    try:
        rows = conn.execute("SELECT email, status, status_reason FROM subscribers").fetchall()
    finally:
        conn.close()
    return {row[0]: (row[1], row[2]) for row in rows}


def _consent(root: Path) -> list[tuple[str, str, str, str | None]]:
    conn = database(root)
    try:
        return conn.execute(
            "SELECT email_key, action, method, issue FROM consent ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def test_one_click_exactly_as_gmail_posts_it_unsubscribes_and_the_next_send_skips(
    tmp_path: Path,
) -> None:
    root = _rehearsed(tmp_path)
    link = _list_unsubscribe(root, "ann@example.org")
    assert "ann" not in link and "%40" not in link  # opaque: no address in the URL

    with serve(load_settings(root)) as base:
        # RFC 8058: a POST with this one form field, no cookies, no redirects followed.
        answer = httpx.post(
            _local(base, link),
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            follow_redirects=False,
        )
        again = httpx.post(_local(base, link), data=ONE_CLICK)

    assert answer.status_code == 200 and again.status_code == 200
    assert _statuses(root)["ann@example.org"] == ("unsubscribed", "one-click")
    assert _statuses(root)["bob@example.org"] == ("active", None)
    # Recorded once (idempotent), with the issue the message came from.
    assert _consent(root) == [("ann@example.org", "unsubscribe", "one-click", "sample")]

    shutil.copytree(root / "issues" / "sample", root / "issues" / "next")
    assert run(root, "send", "next", "--backend", "outbox", "--yes").exit_code == 0
    sent = sorted(path.name for path in (root / "outbox" / "next").iterdir())
    assert sent == ["bob@example.org.eml", "carla@example.org.eml"]


def test_a_get_never_unsubscribes_and_the_page_names_address_and_list(tmp_path: Path) -> None:
    root = _rehearsed(tmp_path)
    link = _list_unsubscribe(root, "bob@example.org")
    with serve(load_settings(root)) as base:
        pages = [httpx.get(_local(base, link)) for _ in range(3)]
        head = httpx.head(_local(base, link))
    assert [page.status_code for page in pages] == [200, 200, 200]
    assert head.status_code == 200
    assert "bob@example.org" in pages[0].text and "The Balkan Brief" in pages[0].text
    assert '<form method="post"' in pages[0].text and "<button" in pages[0].text
    assert pages[0].headers["cache-control"] == "no-store"
    assert _statuses(root)["bob@example.org"] == ("active", None)
    assert _consent(root) == []


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_tampered_foreign_and_missing_tokens_are_refused_and_change_nothing(
    tmp_path: Path, method: str
) -> None:
    root = _rehearsed(tmp_path)
    link = _list_unsubscribe(root, "ann@example.org")
    token = link.rpartition("t=")[2]
    foreign = UnsubscribeLinks("https://example.org/unsubscribe", "other-list", SECRET)
    bad_queries = [
        f"t={token[:-2]}{'A' if token[-2] != 'A' else 'B'}{token[-1]}",
        f"t={token[:20]}",
        "t=",
        "",
        f"t={foreign.token('ann@example.org')}",
        "list=balkan-brief&email=ann@example.org&token=AAAAAAAAAAAAAAAAAAAAAA",
        "t=" + "A" * 5000,
    ]
    with serve(load_settings(root)) as base:
        for query in bad_queries:
            answer = httpx.request(method, f"{base}/unsubscribe?{query}", data=ONE_CLICK)
            assert answer.status_code == 400, query
            assert "Traceback" not in answer.text
    assert {status for status, _ in _statuses(root).values()} == {"active"}
    assert _consent(root) == []


def test_links_of_issues_sent_before_sealed_tokens_still_work(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    add_subscribers(root, PEOPLE)
    old = UnsubscribeLinks("https://example.org/unsubscribe", "balkan-brief", SECRET)
    query = (
        f"list=balkan-brief&email=carla@example.org&token={old.legacy_token('carla@example.org')}"
    )
    with serve(load_settings(root)) as base:
        assert httpx.post(f"{base}/unsubscribe?{query}", data=ONE_CLICK).status_code == 200
    assert _statuses(root)["carla@example.org"] == ("unsubscribed", "one-click")


def test_the_button_needs_the_pages_csrf_token(tmp_path: Path) -> None:
    root = _rehearsed(tmp_path)
    link = _list_unsubscribe(root, "ann@example.org")
    with serve(load_settings(root)) as base, httpx.Client() as browser:
        forged = browser.post(_local(base, link), data={"csrf": "forged"})
        assert forged.status_code == 403
        assert _statuses(root)["ann@example.org"] == ("active", None)
        page = browser.get(_local(base, link))
        token = page.text.split('name="csrf" value="')[1].split('"')[0]
        pressed = browser.post(_local(base, link), data={"csrf": token})
    assert pressed.status_code == 200
    assert "You are unsubscribed" in pressed.text
    assert _statuses(root)["ann@example.org"] == ("unsubscribed", "page")
    assert _consent(root) == [("ann@example.org", "unsubscribe", "page", "sample")]


def test_bad_bodies_methods_and_hosts_get_clear_answers(tmp_path: Path) -> None:
    root = _rehearsed(tmp_path)
    link = _list_unsubscribe(root, "ann@example.org")
    with serve(load_settings(root)) as base:
        url = _local(base, link)
        assert httpx.put(url).status_code == 405
        assert httpx.post(url, content=b"x" * 100_000).status_code == 413
        assert (
            httpx.post(url, content=b"\xff\xfe=\xff", headers={"Content-Type": "text/plain"})
        ).status_code == 400
        assert (
            httpx.post(
                url,
                content=b"List-Unsubscribe=One-Click\xff",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        ).status_code == 400
        assert httpx.get(f"{base}/healthz", headers={"Host": "evil.example.com"}).status_code == 400
        assert httpx.get(f"{base}/admin").status_code == 404
        answer = httpx.get(f"{base}/healthz")
    assert answer.json() == {"ok": True, "database": "ok"}
    for name in ("x-frame-options", "content-security-policy", "x-content-type-options"):
        assert name in answer.headers


@pytest.mark.slow
def test_unsubscribes_taken_while_a_send_runs_lose_nobody_and_are_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Those who leave before their batch is claimed get nothing; everyone else once."""
    bypass_proxy_for_loopback(monkeypatch)
    everyone = numbered(300)
    leaving = everyone[-30:]  # the last 3 of 30 batches: claimed some 8 s after the first
    with StubProcess(port_file=tmp_path / "stub.port", extra_args=["--delay", "0.3"]) as stub:
        # One request at a time: the timing above assumes the batches go out in turn.
        root = sample_workspace(tmp_path / "ws", "batch_size = 10\nconcurrency = 1")
        stub_env(root, stub.url)
        add_subscribers(root, everyone)
        links = UnsubscribeLinks("https://example.org/unsubscribe", "balkan-brief", SECRET)
        with serve(load_settings(root)) as base:
            sender = subprocess.Popen(
                [str(NEWSLETTER), "-w", str(root), "send", "sample", "--yes", "--no-sync"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            deadline = time.monotonic() + 30
            while not stub.requests() and time.monotonic() < deadline:
                time.sleep(0.01)
            with httpx.Client() as client:
                for address in leaving:
                    answer = client.post(
                        f"{base}/unsubscribe?t={links.token(address, 'sample')}", data=ONE_CLICK
                    )
                    assert answer.status_code == 200
            requests_when_done = len(stub.requests())
            _, stderr = sender.communicate(timeout=120)
        deliveries = stub.deliveries(issue="sample")
    assert sender.returncode == 0, stderr.decode()
    # All unsubscribes were in before the sender reached the end of the list.
    assert requests_when_done < 27, requests_when_done
    assert not set(deliveries) & set(leaving)
    assert deliveries == {address: 1 for address in everyone[:-30]}
    assert {_statuses(root)[address][0] for address in leaving} == {"unsubscribed"}
