"""The sample sent to six readers, then a realistic event stream through the webhook."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from newsletter.audience.unsubscribe import UnsubscribeLinks
from newsletter.config import load_settings
from tests._cli import run
from tests._workspace import SECRET, add_subscribers, sample_workspace, stub_env
from tests.sendgrid_stub import (
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)
from tests.web._server import serve
from tests.web._signing import SigningKey, body_of

READERS = [f"reader{n}@example.org" for n in range(1, 7)]
UTM = "utm_source=newsletter&utm_medium=email&utm_campaign=sample"
LEAD = "https://example.org/placeholder/iranians-hold-rallies-to-protest-police-raid-on-oppositions-albania-based-hq"
SECOND = "https://example.org/placeholder/after-the-snapback-large-new-set-of-u-s-iran-sanctions-announced"


def _event(email: str, event: str, at: float, **more: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": int(at),
        "event": event,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "msg." + email,
        "issue": "sample",
        **more,
    }


def _stream(sent_at: float, links: UnsubscribeLinks) -> list[dict[str, Any]]:
    r1, r2, r3, r4, r5, r6 = READERS
    later = sent_at + 3600
    events = [_event(who, "processed", sent_at) for who in READERS]
    events += [_event(who, "delivered", sent_at + 5) for who in (r1, r2, r3, r4, r5)]
    events += [
        _event(r5, "deferred", sent_at + 2),
        _event(r6, "bounce", sent_at + 9, type="bounce", reason="550 no such user"),
        _event(r1, "open", later, sg_machine_open=False),
        _event(r1, "open", later + 60, sg_machine_open=False),
        _event(r2, "open", sent_at + 30, sg_machine_open=True),  # Apple MPP only
        _event(r3, "open", sent_at + 30, sg_machine_open=True),
        _event(r3, "open", later + 7200, sg_machine_open=False),
        _event(r1, "click", later + 10, url=f"{LEAD}?{UTM}"),
        _event(r1, "click", later + 20, url=f"{LEAD}?{UTM}"),
        _event(r1, "click", later + 30, url=f"{SECOND}?{UTM}"),
        _event(r3, "click", later + 7300, url=f"{LEAD}?{UTM}"),
        _event(r4, "click", later, url="https://example.org/archive/sample/"),
        _event(r5, "click", later, url=links.url(r5, "sample")),
        _event(r5, "group_unsubscribe", later + 5, asm_group_id=42),
        _event(r1, "click", later + 40, url="https://example.org/placeholder/a-story-removed"),
        _event(r4, "spamreport", later + 100),
    ]
    return events


@pytest.fixture
def reported(tmp_path: Path, sendgrid_stub: SendGridStub) -> Path:
    """The sample sent to six readers, then its events and one one-click unsubscribe."""
    root = sample_workspace(tmp_path / "ws")
    key = SigningKey()
    stub_env(root, sendgrid_stub.url)
    with (root / ".env").open("a", encoding="utf-8") as env:
        env.write(f"SENDGRID_WEBHOOK_PUBLIC_KEY={key.public_key}\n")
    add_subscribers(root, READERS)
    assert run(root, "send", "sample", "--yes", "--no-sync").exit_code == 0
    settings = load_settings(root)
    links = UnsubscribeLinks(settings.file.newsletter.unsubscribe_url, "balkan-brief", SECRET)
    stream = _stream(time.time() - 60, links)
    with serve(settings) as base:
        for _ in range(2):  # SendGrid retries: the same post twice counts once
            body = body_of(stream)
            answer = httpx.post(f"{base}/webhooks/sendgrid", content=body, headers=key.sign(body))
            assert answer.status_code in (200, 204), answer.text
        one_click = httpx.post(
            f"{base}/unsubscribe?t={links.token(READERS[1], 'sample')}",
            data={"List-Unsubscribe": "One-Click"},
        )
        assert one_click.status_code == 200
    return root
