"""/subscribe and /subscribe/confirm through a real uvicorn server (httpx as the browser)."""

from __future__ import annotations

import email
import email.policy
import re
import time
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from newsletter.config import load_settings
from newsletter.db import transaction
from tests._cli import run
from tests._workspace import add_subscribers, database, sample_workspace, write_csv
from tests.web._server import serve

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")

CONFIRMATIONS = Path("outbox") / "_confirmations"


def _workspace(tmp_path: Path, web: str = "") -> Path:
    root = sample_workspace(tmp_path / "ws")
    if web:
        config = root / "newsletter.toml"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("[web]\n", f"[web]\n{web}\n", 1), encoding="utf-8")
    return root


def _sign_up(client: httpx.Client, base: str, address: str, **extra: str) -> httpx.Response:
    form = client.get(f"{base}/subscribe")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    return client.post(
        f"{base}/subscribe", data={"csrf": token.group(1), "email": address, **extra}
    )


def _statuses(root: Path) -> dict[str, str]:
    conn = database(root)
    try:
        return dict(conn.execute("SELECT email_key, status FROM subscribers").fetchall())
    finally:
        conn.close()


def _signups(root: Path) -> list[tuple[str, str | None]]:
    conn = database(root)
    try:
        return conn.execute(
            "SELECT email_key, ip FROM consent WHERE action = 'signup' ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def _mailed(root: Path) -> set[str]:
    folder = root / CONFIRMATIONS
    return {path.stem for path in folder.glob("*.eml")} if folder.is_dir() else set()


def _confirm_link(root: Path, address: str) -> str:
    raw = (root / CONFIRMATIONS / f"{address}.eml").read_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    assert isinstance(text, EmailMessage)
    found = re.search(r"https://[^/\s]+(/subscribe/confirm\?t=\S+)", text.get_content())
    assert found is not None
    return found.group(1)


def test_every_signup_gets_the_same_answer_whoever_the_address_is(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    add_subscribers(root, ["active@example.org"])
    add_subscribers(root, ["left@example.org"], status="unsubscribed")
    add_subscribers(root, ["bounced@example.org"], status="bounced")
    with serve(load_settings(root)) as base, httpx.Client() as client:
        answers = [
            _sign_up(client, base, address)
            for address in (
                "new@example.org",
                "active@example.org",
                "left@example.org",
                "bounced@example.org",
            )
        ]
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.text for answer in answers}) == 1  # no account enumeration
    assert _statuses(root) == {
        "new@example.org": "pending",
        "active@example.org": "active",
        "left@example.org": "unsubscribed",
        "bounced@example.org": "bounced",
    }
    # A bounced address gets no message; the others get the link.
    assert _mailed(root) == {"new@example.org", "active@example.org", "left@example.org"}
    assert [key for key, _ in _signups(root)] == [
        "new@example.org",
        "active@example.org",
        "left@example.org",
        "bounced@example.org",
    ]
    assert {ip for _, ip in _signups(root)} == {"127.0.0.1"}


def test_confirming_makes_active_and_a_reader_who_left_can_come_back(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    add_subscribers(root, ["left@example.org"], status="unsubscribed")
    with serve(load_settings(root)) as base, httpx.Client() as client:
        _sign_up(client, base, "left@example.org")
        link = _confirm_link(root, "left@example.org")
        page = client.get(base + link)
        assert _statuses(root)["left@example.org"] == "unsubscribed"
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        forged = client.post(base + link, data={"csrf": "nope"})
        assert forged.status_code == 403
        done = client.post(base + link, data={"csrf": token.group(1)})
    assert done.status_code == 200 and "You are subscribed" in done.text
    assert _statuses(root)["left@example.org"] == "active"


def test_an_import_never_turns_a_pending_signup_active(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with serve(load_settings(root)) as base, httpx.Client() as client:
        _sign_up(client, base, "pending@example.org")
    csv = write_csv(tmp_path / "list.csv", "email,status\npending@example.org,subscribed\n")
    outcome = run(root, "subscribers", "import", str(csv))
    assert "kept pending" in outcome.stderr
    assert _statuses(root)["pending@example.org"] == "pending"
    assert run(root, "send", "sample", "--backend", "outbox", "--yes").exit_code == 0
    assert not (root / "outbox" / "sample").exists() or not list(
        (root / "outbox" / "sample").iterdir()
    )


def test_bots_forgeries_and_bad_addresses(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    with serve(load_settings(root)) as base, httpx.Client() as client:
        honeypot = _sign_up(client, base, "bot@example.org", website="http://spam.example")
        no_csrf = client.post(f"{base}/subscribe", data={"email": "x@example.org"})
        bad = _sign_up(client, base, "not-an-address")
        binary = client.post(
            f"{base}/subscribe",
            content=b"email=\xff\xfe",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        huge = client.post(f"{base}/subscribe", data={"email": "a" * 100_000})
    assert honeypot.status_code == 200 and "Check your inbox" in honeypot.text
    assert no_csrf.status_code == 403
    assert bad.status_code == 400 and "Please check the address" in bad.text
    assert 'value="not-an-address"' in bad.text  # the form comes back filled in
    assert binary.status_code == 400
    assert huge.status_code == 413
    assert _statuses(root) == {} and _mailed(root) == set()


def test_rate_limits_per_ip_and_per_address(tmp_path: Path) -> None:
    root = _workspace(tmp_path, "signups_per_hour_per_ip = 4\nsignups_per_hour_per_address = 2")
    with serve(load_settings(root)) as base, httpx.Client() as client:
        same = [_sign_up(client, base, "ann@example.org").status_code for _ in range(3)]
        answers = [_sign_up(client, base, f"user{i}@example.org") for i in range(3)]
        others = [answer.status_code for answer in answers]
        assert answers[-1].headers["retry-after"] == "3600"
    assert same == [200, 200, 200]  # the third is answered alike but mails nothing
    assert others == [200, 200, 429]
    assert [key for key, _ in _signups(root)] == [
        "ann@example.org",
        "ann@example.org",
        "user0@example.org",
        "user1@example.org",
    ]


def test_a_confirmation_link_expires_after_a_week(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    settings = load_settings(root)
    with serve(settings) as base, httpx.Client() as client:
        _sign_up(client, base, "late@example.org")
    link = _confirm_link(root, "late@example.org")
    later = time.time() + 8 * 86_400
    with serve(settings, clock=lambda: later) as base:
        expired = httpx.get(base + link)
        tampered = httpx.get(base + link[:-3] + "AAA")
    assert expired.status_code == 400 and "has expired" in expired.text
    assert tampered.status_code == 400 and "is not valid" in tampered.text
    assert _statuses(root)["late@example.org"] == "pending"


@pytest.mark.parametrize("path", ["/subscribe", "/subscribe/confirm"])
def test_wrong_methods_are_refused(tmp_path: Path, path: str) -> None:
    with serve(load_settings(_workspace(tmp_path))) as base:
        assert httpx.delete(base + path).status_code == 405


def test_an_old_confirmation_link_never_reactivates_an_address_that_bounced(
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path)
    with serve(load_settings(root)) as base, httpx.Client() as client:
        _sign_up(client, base, "gone@example.org")
        link = _confirm_link(root, "gone@example.org")
        page = client.get(base + link)
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        assert client.post(base + link, data={"csrf": token.group(1)}).status_code == 200
        assert _statuses(root)["gone@example.org"] == "active"
        conn = database(root)
        with transaction(conn):  # a later issue hard-bounced (as the webhook records it)
            conn.execute("UPDATE subscribers SET status = 'bounced'")
        conn.close()
        page = client.get(base + link)
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        again = client.post(base + link, data={"csrf": token.group(1)})
    assert again.status_code == 409 and "cannot be subscribed through this link" in again.text
    assert _statuses(root)["gone@example.org"] == "bounced"
