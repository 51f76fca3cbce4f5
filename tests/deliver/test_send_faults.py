"""Faults inside a send that are not delivery outcomes: settings refused up front, batches
never left `sending`, one line at the CLI and no secret in it."""

from __future__ import annotations

import email
import os
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.deliver.backends import BatchResult
from newsletter.deliver.message import Message, RecipientLike
from newsletter.deliver.sender import Sender
from tests._cli import run
from tests._workspace import (
    SECRET,
    add_subscribers,
    ledger_states,
    numbered,
    sample_workspace,
    write_env,
)
from tests.sendgrid_stub import SendGridStub

KEY = "SG.test-key-0123456789"


def _workspace(tmp_path: Path, **env: str) -> Path:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, numbered(3))
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET, **env)
    return root


def _states(root: Path) -> dict[str, str]:
    """The ledger read straight from newsletter.db (the settings refuse to load)."""
    from newsletter.db import open_database
    from newsletter.deliver.ledger import STATES, Ledger

    conn = open_database(root / "newsletter.db")
    try:
        ledger = Ledger(conn)
        return {email: s for s in STATES for email, _ in ledger.recipients("sample", s)}
    finally:
        conn.close()


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    "key",
    [
        "SG.abc\\ndef",  # a double-quoted .env value: \n is a line break
        "SG.abc def",
        "SG.abcé",
    ],
)
def test_a_key_that_cannot_be_a_header_is_refused_before_anything_is_claimed(
    tmp_path: Path, key: str
) -> None:
    root = _workspace(tmp_path)
    (root / ".env").write_text(
        f'NEWSLETTER_UNSUBSCRIBE_SECRET={SECRET}\nSENDGRID_API_KEY="{key}"\n', encoding="utf-8"
    )
    outcome = run(root, "send", "sample", "--yes", "--backend", "sendgrid")
    assert outcome.exit_code == 1
    line = _one_line_error(outcome.stderr)
    assert "SENDGRID_API_KEY contains a space, a line break or a non-ASCII character" in line
    assert str(root / ".env") in line
    for part in ("abc", "def"):
        assert part not in outcome.stdout + outcome.stderr
    assert set(_states(root).values()) <= {"pending"}


@pytest.mark.parametrize(
    "host", ["notaurl", "http://[::1", "ftp://api.sendgrid.com", "http://127.0.0.1:"]
)
def test_a_host_that_is_not_an_http_url_is_refused_when_settings_are_read(
    tmp_path: Path, host: str
) -> None:
    root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, SENDGRID_API_HOST=host)
    outcome = run(root, "send", "sample", "--yes")
    assert outcome.exit_code == 1
    line = _one_line_error(outcome.stderr)
    assert "SENDGRID_API_HOST is not an http(s) URL" in line
    assert "https://api.sendgrid.com" in line
    assert KEY not in outcome.stdout + outcome.stderr
    assert _states(root) == {}


def test_a_host_given_in_the_environment_is_named_as_such(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _workspace(tmp_path, SENDGRID_API_KEY=KEY)
    monkeypatch.setenv("SENDGRID_API_HOST", "notaurl")
    line = _one_line_error(run(root, "send", "sample", "--yes").stderr)
    assert "the environment" in line and ".env" not in line


class _Exploding:
    """A backend whose library fails in a way no outcome describes."""

    name = "exploding"
    unit = "request"
    max_batch_size = 2
    requests = 0
    timings: dict[str, float] = {}  # noqa: RUF012 - the Backend protocol's attribute

    def send_batch(self, message: Message, recipients: Sequence[RecipientLike]) -> BatchResult:
        raise RuntimeError("library bug")

    def describe(self) -> str:
        return "exploding"

    def close(self) -> None:
        pass


def test_an_unexpected_backend_error_leaves_no_row_sending(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    settings = load_settings(root)
    with Sender(settings, "sample", backend=_Exploding()) as sender:  # type: ignore[arg-type]
        sender.preflight()
        summary = sender.send()
    assert summary.stopped is not None
    assert "failed (RuntimeError)" in summary.stopped.line()
    states = ledger_states(root, "sample")
    assert sorted(states.values()) == ["pending", "unknown", "unknown"]
    assert summary.unknown == 2


def test_a_request_the_client_cannot_build_is_released_not_unknown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http.client refuses a bad header before a byte is written: nothing went out."""
    with SendGridStub(KEY) as stub:
        root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, SENDGRID_API_HOST=stub.url)

        def refuse(*_args: object, **_kwargs: object) -> None:
            raise ValueError(f"Invalid header value b'Bearer {KEY}\\n'")

        monkeypatch.setattr("http.client.HTTPConnection.putheader", refuse)
        synced = run(root, "send", "sample", "--yes")
        unsynced = run(root, "send", "sample", "--yes", "--no-sync")
    assert "cannot read /v3/suppression/unsubscribes" in _one_line_error(synced.stderr)
    assert unsynced.exit_code != 0
    assert "the request could not be made" in _one_line_error(unsynced.stderr)
    for outcome in (synced, unsynced):
        assert KEY not in outcome.stdout + outcome.stderr
    assert set(ledger_states(root, "sample").values()) == {"pending"}


def test_an_account_out_of_credits_is_not_called_a_bad_key(tmp_path: Path) -> None:
    with SendGridStub(KEY) as stub:
        root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, SENDGRID_API_HOST=stub.url)
        stub.plan("no_credits")
        outcome = run(root, "send", "sample", "--yes", "--no-sync")
        assert stub.deliveries(issue="sample") == {}
    assert outcome.exit_code == 3
    line = _one_line_error(outcome.stderr)
    assert "the account has no email credits left (401: Maximum credits exceeded)" in line
    assert "SENDGRID_API_KEY" not in line
    assert set(ledger_states(root, "sample").values()) == {"pending"}


def test_a_very_long_subscriber_name_keeps_every_header_line_within_998_octets(
    tmp_path: Path,
) -> None:
    root = sample_workspace(tmp_path / "ws")
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    from newsletter.db import open_database, transaction

    conn = open_database(root / "newsletter.db")
    with transaction(conn):
        conn.execute(
            "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
            "created, updated) VALUES ('long@example.org', 'long@example.org', ?, 'Kim', '{}', "
            "'active', 'now', 'now')",
            ("Kim " + "x" * 5000,),
        )
    conn.close()
    outcome = run(root, "send", "sample", "--yes", "--backend", "outbox")
    assert outcome.exit_code == 0, outcome.stderr
    (eml,) = (root / "outbox" / "sample").iterdir()
    raw = eml.read_bytes()
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    assert max(len(line) for line in head.splitlines()) <= 998
    assert b"Kim xxx" in head


def test_a_real_send_refuses_the_example_sender_and_postal_address(tmp_path: Path) -> None:
    """Real article links and list URLs, but From and the postal address still the example."""
    root = _workspace(tmp_path, SENDGRID_API_KEY=KEY)
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8").replace("allow_placeholders = true\n", "")
    text = text.replace("https://example.org", "https://news.example-media.eu")
    config.write_text(text, encoding="utf-8")
    issue = root / "issues" / "sample" / "issue.yaml"
    issue.write_text(
        issue.read_text(encoding="utf-8").replace(
            "https://example.org/placeholder/", "https://news.example-media.eu/story/"
        ),
        encoding="utf-8",
    )
    with SendGridStub(KEY) as stub:
        (root / ".env").write_text(
            f"NEWSLETTER_UNSUBSCRIBE_SECRET={SECRET}\nSENDGRID_API_KEY={KEY}\n"
            f"SENDGRID_API_HOST={stub.url}\n",
            encoding="utf-8",
        )
        outcome = run(root, "send", "sample", "--yes", "--no-sync")
        assert stub.accepted == []
    assert outcome.exit_code == 1
    line = _one_line_error(outcome.stderr)
    assert "still has example placeholders: [sender] email in newsletter.toml, [sender]" in line
    assert "[sender] postal_address in newsletter.toml" in line
    assert "article link" not in line and "[newsletter]" not in line


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real file system that fills up: a 160 KiB tmpfs (needs root, as CI has)."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and needs root (CI runs as root)")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_full_disk_mid_batch_records_the_files_written_as_sent(
    tmp_path: Path, small_disk: Path
) -> None:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, numbered(10))
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    config = root / "newsletter.toml"
    config.write_text(
        config.read_text(encoding="utf-8") + f'\n[paths]\noutbox = "{small_disk}"\n',
        encoding="utf-8",
    )
    full = run(root, "send", "sample", "--yes", "--backend", "outbox")
    assert full.exit_code == 3
    assert "cannot write the outbox" in _one_line_error(full.stderr)
    written = sorted(p.name for p in (small_disk / "sample").glob("*.eml"))
    states = ledger_states(root, "sample")
    sent = sorted(f"{email}.eml" for email, state in states.items() if state == "sent")
    assert 0 < len(written) < 10
    assert sent == written  # exactly the recipients who have a file are recorded as sent
    assert sorted(states.values()).count("pending") == 10 - len(written)
    roomy = tmp_path / "roomy"  # the editor frees space: the rerun writes elsewhere
    config.write_text(
        config.read_text(encoding="utf-8").replace(str(small_disk), str(roomy)),
        encoding="utf-8",
    )
    rerun = run(root, "send", "sample", "--yes", "--backend", "outbox")
    assert rerun.exit_code == 0, rerun.stderr
    assert f"sent {10 - len(written)}, skipped 0, failed 0, unknown 0" in rerun.stdout
    again = sorted(p.name for p in (roomy / "sample").glob("*.eml"))
    assert set(again).isdisjoint(written) and len(again) == 10 - len(written)


def test_a_rehearsal_to_the_outbox_does_not_block_the_real_send(tmp_path: Path) -> None:
    with SendGridStub(KEY) as stub:
        root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, SENDGRID_API_HOST=stub.url)
        rehearsal = run(root, "send", "sample", "--yes", "--backend", "outbox")
        assert rehearsal.exit_code == 0, rehearsal.stderr
        assert len(list((root / "outbox" / "sample").glob("*.eml"))) == 3
        again = run(root, "send", "sample", "--yes", "--backend", "outbox")
        assert "was already sent to 3 recipients" in again.stderr  # to the outbox, yes
        status = run(root, "status", "sample")
        assert "  sent by  outbox 3 (the outbox is a rehearsal" in status.stdout
        real = run(root, "send", "sample", "--yes", "--backend", "sendgrid", "--no-sync")
        assert real.exit_code == 0, real.stderr
        assert "sent 3, skipped 0, failed 0, unknown 0" in real.stdout
        assert stub.deliveries(issue="sample") == dict.fromkeys(numbered(3), 1)
        done = run(root, "send", "sample", "--yes", "--backend", "sendgrid", "--no-sync")
        assert "was already sent to 3 recipients" in done.stderr
        assert stub.deliveries(issue="sample") == dict.fromkeys(numbered(3), 1)
    status = run(root, "status", "sample", "--json")
    assert '"sent_by": {\n    "sendgrid": 3\n  }' in status.stdout


# YAML's escapes for U+2028, U+2029, U+0085 and VT (a raw one is folded by YAML itself).
@pytest.mark.parametrize("separator", ["\\L", "\\P", "\\N", "\\v"])
def test_a_unicode_line_separator_in_the_subject_is_refused_where_the_issue_is_read(
    tmp_path: Path, separator: str
) -> None:
    root = _workspace(tmp_path)
    issue = root / "issues" / "sample" / "issue.yaml"
    text = issue.read_text(encoding="utf-8")
    subject = next(line for line in text.splitlines() if line.startswith("subject:"))
    issue.write_text(text.replace(subject, f'subject: "Breaking{separator}news"'), encoding="utf-8")
    for command in (("check", "sample"), ("send", "sample", "--yes", "--backend", "outbox")):
        outcome = run(root, *command)
        assert outcome.exit_code == 1
        line = _one_line_error(outcome.stderr)
        assert "issue.yaml:3: subject: must be a single line (no line breaks or line" in line
    assert not (root / "outbox").exists()


def test_a_subscriber_added_with_only_a_name_is_greeted_by_it(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    assert run(root, "subscribers", "add", "kim@example.org", "--name", "Kim Lee").exit_code == 0
    assert run(root, "send", "sample", "--yes", "--backend", "outbox").exit_code == 0
    message = email.message_from_bytes(
        (root / "outbox" / "sample" / "kim@example.org.eml").read_bytes()
    )
    text = next(part for part in message.walk() if part.get_content_type() == "text/plain")
    assert "\r\nHi Kim,\r\n" in text.get_payload(decode=True).decode("utf-8")


def test_a_line_separator_in_the_sender_name_is_refused_where_settings_are_read(
    tmp_path: Path,
) -> None:
    root = _workspace(tmp_path)
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('name = "The Balkan Brief"\nemail', 'name = "The Balkan\\u2028Brief"\nemail'),
        encoding="utf-8",
    )
    outcome = run(root, "send", "sample", "--yes", "--backend", "outbox")
    assert outcome.exit_code == 1
    line = _one_line_error(outcome.stderr)
    assert "newsletter.toml" in line and "[sender.name] must be a single line" in line


def test_sync_against_a_closed_port_says_connection_refused_in_words(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, SENDGRID_API_HOST=f"http://127.0.0.1:{port}")

    synced = run(root, "subscribers", "sync")

    line = _one_line_error(synced.stderr)
    assert "cannot read /v3/suppression/unsubscribes (connection refused)" in line
    assert "urlopen" not in line and "Errno" not in line


def test_a_host_that_answers_200_with_something_else_is_one_line(tmp_path: Path) -> None:
    """A SENDGRID_API_HOST pointing at some web server that answers every path with HTML."""
    import http.server
    import threading

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>It works!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        host = f"http://127.0.0.1:{server.server_address[1]}"
        root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, SENDGRID_API_HOST=host)
        synced = run(root, "subscribers", "sync")
        sent = run(root, "send", "sample", "--yes")
    finally:
        server.shutdown()
    for outcome in (synced, sent):
        assert outcome.exit_code != 0
        line = _one_line_error(outcome.stderr)
        assert "is not a SendGrid list (not JSON)" in line
        assert "Traceback" not in outcome.stderr


@pytest.mark.parametrize("variable", ["SENDGRID_API_HOST", "SMTP_PORT"])
def test_a_key_pasted_into_the_wrong_line_is_never_printed(tmp_path: Path, variable: str) -> None:
    root = _workspace(tmp_path, SENDGRID_API_KEY=KEY, **{variable: KEY})
    outcome = run(root, "send", "sample", "--yes")
    assert outcome.exit_code == 1
    line = _one_line_error(outcome.stderr)
    assert variable in line
    assert KEY not in outcome.stdout + outcome.stderr
    assert KEY[3:15] not in outcome.stdout + outcome.stderr
