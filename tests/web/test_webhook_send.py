"""End to end: a real send to the SendGrid stand-in, SendGrid's events for its recipients
posted through the webhook, and the next sends skip exactly the people they name."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from newsletter.config import load_settings
from tests._cli import run
from tests._workspace import API_KEY, SECRET, add_subscribers, numbered, sample_workspace, write_env
from tests.sendgrid_stub import SendGridStub, bypass_proxy_for_loopback
from tests.web._server import serve
from tests.web._signing import SigningKey, body_of
from tests.web.test_webhook import event, statuses

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    bypass_proxy_for_loopback(monkeypatch)


@pytest.fixture
def stub() -> Iterator[SendGridStub]:
    with SendGridStub(API_KEY) as running:
        yield running


def test_events_posted_after_a_send_keep_their_people_out_of_the_next_sends(
    tmp_path: Path, stub: SendGridStub
) -> None:
    key = SigningKey()
    root = sample_workspace(tmp_path / "ws")
    shutil.copytree(root / "issues" / "sample", root / "issues" / "second")
    write_env(
        root,
        SENDGRID_API_KEY=API_KEY,
        SENDGRID_API_HOST=stub.url,
        NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET,
        SENDGRID_WEBHOOK_PUBLIC_KEY=key.public_key,
    )
    readers = numbered(7)
    add_subscribers(root, readers)
    first = run(root, "send", "sample", "--yes")
    assert first.exit_code == 0, first.stderr
    sent = stub.accepted[0].body
    assert sent["custom_args"] == {"issue": "sample"}  # what SendGrid puts in each event
    assert stub.deliveries(issue="sample") == {email: 1 for email in readers}

    # What SendGrid reports about that send: custom_args come back flattened, as `issue`.
    events = [
        *(event("delivered", email, issue="sample") for email in readers),
        event("open", readers[0], sg_machine_open=False),
        event("bounce", readers[1], type="bounce", reason="550 5.1.1 unknown user"),
        event("spamreport", readers[2]),
        event("unsubscribe", readers[3]),
        event("bounce", readers[4], type="blocked", reason="421 try later"),  # no change
        event("dropped", readers[5], reason="Invalid SMTPAPI header"),  # no change
    ]
    settings = load_settings(root)
    with serve(settings) as base:
        url = f"{base}/webhooks/sendgrid"
        body = body_of(events)
        answer = httpx.post(url, content=body, headers=key.sign(body), timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["subscribers_changed"] == 3
        # Two who joined after the first send; one of them leaves through a group unsubscribe.
        add_subscribers(root, ["late1@example.org", "late2@example.org"])
        body = body_of([event("group_unsubscribe", "late2@example.org", asm_group_id=7)])
        assert httpx.post(url, content=body, headers=key.sign(body)).status_code == 200

    assert statuses(settings)[readers[1]] == ("bounced", "sendgrid bounce")
    assert statuses(settings)[readers[2]] == ("complained", "sendgrid spam report")
    assert statuses(settings)[readers[3]] == ("unsubscribed", "sendgrid unsubscribe")

    newcomers = run(root, "send", "sample", "--yes", "--new-subscribers")
    assert newcomers.exit_code == 0, newcomers.stderr
    assert "sent 1, skipped 0" in newcomers.stdout
    assert stub.deliveries(issue="sample") == {**dict.fromkeys(readers, 1), "late1@example.org": 1}

    second = run(root, "send", "second", "--yes")
    assert second.exit_code == 0, second.stderr
    expected = [readers[0], *readers[4:], "late1@example.org"]
    assert stub.deliveries(issue="second") == dict.fromkeys(expected, 1)
