"""/webhooks/sendgrid through a real uvicorn server: httpx posts, signed as SendGrid signs."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.config import Settings, load_settings
from newsletter.db import open_database, transaction
from tests._workspace import add_subscribers, database, sample_workspace, write_env
from tests.web._server import serve
from tests.web._signing import SIGNATURE, TIMESTAMP, SigningKey, body_of

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")

_ids = itertools.count()


def event(kind: str, email: str, **fields: Any) -> dict[str, Any]:
    """One event as SendGrid posts it (custom_args flattened: `issue`)."""
    n = next(_ids)
    return {
        "email": email,
        "timestamp": 1_765_000_000 + n,
        "smtp-id": f"<{n}@example.org>",
        "event": kind,
        "category": [],
        "sg_event_id": f"sg-event-{n}",
        "sg_message_id": f"msg-{n}.filter0001",
        "issue": "sample",
        **fields,
    }


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey()


def workspace(tmp_path: Path, key: SigningKey | None, emails: Sequence[str] = ()) -> Settings:
    root = sample_workspace(tmp_path / "ws")
    if key is not None:
        write_env(root, SENDGRID_WEBHOOK_PUBLIC_KEY=key.public_key)
    add_subscribers(root, emails)
    return load_settings(root)


@pytest.fixture
def site(tmp_path: Path, key: SigningKey) -> Iterator[tuple[str, Settings]]:
    settings = workspace(tmp_path, key, [f"reader{i}@example.org" for i in range(12)])
    with serve(settings) as base:
        yield f"{base}/webhooks/sendgrid", settings


def post(url: str, key: SigningKey, events: list[Any], **kwargs: Any) -> httpx.Response:
    body = body_of(events)
    return httpx.post(url, content=body, headers=key.sign(body), timeout=60, **kwargs)


def rows(settings: Settings, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = open_database(settings.database)
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


def event_count(settings: Settings) -> int:
    return int(rows(settings, "SELECT count(*) FROM events")[0][0])


def statuses(settings: Settings) -> dict[str, tuple[str, str | None]]:
    found = rows(settings, "SELECT email_key, status, status_reason FROM subscribers")
    return {email: (status, reason) for email, status, reason in found}


def test_a_signed_post_is_stored_and_applied_to_the_subscribers(
    site: tuple[str, Settings], key: SigningKey
) -> None:
    url, settings = site
    add_subscribers(settings.workspace, ["left@example.org"], status="unsubscribed")
    add_subscribers(settings.workspace, ["waiting@example.org"], status="pending")
    r = [f"reader{i}@example.org" for i in range(12)]
    events = [
        event("processed", r[0]),
        event("delivered", r[0], response="250 OK"),
        event("open", r[0], sg_machine_open=True, useragent="Mozilla/5.0", ip="192.0.2.1"),
        event("click", r[0], url="https://example.org/story?utm_source=newsletter"),
        event("deferred", r[0], response="400 try again later", attempt="1"),
        event("bounce", r[1], type="bounce", reason="550 5.1.1 no such user", status="5.1.1"),
        event("bounce", r[2], type="blocked", reason="550 blocked by policy", status="5.7.1"),
        event("dropped", r[3], reason="Invalid"),
        event("dropped", r[4], reason="Bounced Address"),
        event("dropped", r[5], reason="Spam Reporting Address"),
        event("dropped", r[6], reason="Invalid SMTPAPI header"),
        event("spamreport", r[7]),
        event("unsubscribe", r[8], ip="192.0.2.8"),
        event("group_unsubscribe", r[9], asm_group_id=42),
        event("group_resubscribe", "left@example.org", asm_group_id=42),
        event("bounce", "left@example.org", type="bounce"),
        event("spamreport", "waiting@example.org"),
        event("unsubscribe", "stranger@example.org"),
    ]
    answer = post(url, key, events)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {
        "received": 18,
        "stored": 18,
        "duplicates": 0,
        "malformed": 0,
        "subscribers_changed": 8,
    }
    assert statuses(settings) == {
        r[0]: ("active", None),
        r[1]: ("bounced", "sendgrid bounce"),
        r[2]: ("active", None),  # blocked: a temporary refusal
        r[3]: ("bounced", "sendgrid dropped: invalid address"),
        r[4]: ("bounced", "sendgrid dropped: bounced address"),
        r[5]: ("complained", "sendgrid dropped: spam reporting address"),
        r[6]: ("active", None),  # our header, not their address
        r[7]: ("complained", "sendgrid spam report"),
        r[8]: ("unsubscribed", "sendgrid unsubscribe"),
        r[9]: ("unsubscribed", "sendgrid group unsubscribe"),
        r[10]: ("active", None),
        r[11]: ("active", None),
        "left@example.org": ("unsubscribed", None),  # not re-activated, not made bounced
        "waiting@example.org": ("complained", "sendgrid spam report"),
    }
    stored = rows(
        settings,
        "SELECT event, email_key, issue, occurred, url, reason, bounce_type, machine_open, "
        "sg_event_id FROM events ORDER BY id",
    )
    assert [row[0] for row in stored] == [e["event"] for e in events]
    assert {row[2] for row in stored} == {"sample"}
    assert stored[2][7] == 1 and stored[3][7] == 0  # sg_machine_open
    assert stored[3][4] == "https://example.org/story?utm_source=newsletter"
    assert stored[5][5:7] == ("550 5.1.1 no such user", "bounce")
    assert stored[6][6] == "blocked"
    assert stored[7][5] == "Invalid"
    assert stored[0][3] == events[0]["timestamp"] and stored[0][8] == events[0]["sg_event_id"]
    assert stored[-1][1] == "stranger@example.org"
    assert "stranger@example.org" not in statuses(settings)  # stored, changes nobody
    consent = rows(settings, "SELECT email_key, action, method, issue, ip FROM consent")
    assert consent == [
        (r[8], "unsubscribe", "sendgrid", "sample", "192.0.2.8"),
        (r[9], "unsubscribe", "sendgrid group", "sample", None),  # its group page
    ]


def test_verification_agrees_with_sendgrids_own_helper(key: SigningKey) -> None:
    """The helper in the sendgrid package and ours accept and refuse the same posts."""
    from sendgrid.helpers.eventwebhook import EventWebhook

    from newsletter.web.signature import Refused, load_key, verify

    body = body_of([event("delivered", "reader0@example.org", note="café ✓")])
    headers = key.sign(body)
    helper = EventWebhook(key.public_key)
    ours = load_key(key.public_key)
    stamp = headers[TIMESTAMP]
    for candidate, expected in ((body, True), (body.replace(b"delivered", b"delivereD"), False)):
        assert helper.verify_signature(candidate.decode(), headers[SIGNATURE], stamp) is expected
        try:
            verify(ours, headers, candidate, time.time())
            accepted = True
        except Refused:
            accepted = False
        assert accepted is expected


def _refused(
    url: str, settings: Settings, body: bytes, headers: dict[str, str], reason: str
) -> None:
    answer = httpx.post(url, content=body, headers=headers, timeout=30)
    assert answer.status_code == 403, answer.text
    assert answer.json() == {"error": reason}
    assert event_count(settings) == 0
    assert set(statuses(settings).values()) == {("active", None)}


BOUNCE = [event("bounce", "reader1@example.org", type="bounce")]
MISMATCH = "the signature does not match the body"


def test_a_tampered_body_is_refused(site: tuple[str, Settings], key: SigningKey) -> None:
    url, settings = site
    body = body_of(BOUNCE)
    headers = key.sign(body)
    tampered = body.replace(b"reader1@", b"reader2@")
    _refused(url, settings, tampered, headers, MISMATCH)
    _refused(url, settings, body + b" ", headers, MISMATCH)


def test_a_post_signed_with_another_key_is_refused(
    site: tuple[str, Settings], key: SigningKey
) -> None:
    url, settings = site
    body = body_of(BOUNCE)
    _refused(url, settings, body, SigningKey().sign(body), MISMATCH)
    # The right key over another timestamp than the one sent.
    headers = {**key.sign(body, int(time.time()) - 5), TIMESTAMP: str(int(time.time()))}
    _refused(url, settings, body, headers, MISMATCH)


@pytest.mark.parametrize("missing", [(SIGNATURE,), (TIMESTAMP,), (SIGNATURE, TIMESTAMP)])
def test_an_unsigned_post_is_refused(
    site: tuple[str, Settings], key: SigningKey, missing: tuple[str, ...]
) -> None:
    url, settings = site
    body = body_of(BOUNCE)
    headers = {k: v for k, v in key.sign(body).items() if k not in missing}
    unsigned = "unsigned: the signature and timestamp headers are required"
    _refused(url, settings, body, headers, unsigned)


# A minute past the limit either way: the clock moves while the post travels.
@pytest.mark.parametrize("offset", [-660, 660, -86_400])
def test_a_stale_or_future_post_is_refused(
    site: tuple[str, Settings], key: SigningKey, offset: int
) -> None:
    url, settings = site
    body = body_of(BOUNCE)
    stale = "stale: the timestamp is more than 10 minutes from our clock"
    _refused(url, settings, body, key.sign(body, int(time.time()) + offset), stale)


def test_a_post_nine_minutes_old_is_taken(site: tuple[str, Settings], key: SigningKey) -> None:
    url, settings = site
    body = body_of(BOUNCE)
    answer = httpx.post(url, content=body, headers=key.sign(body, int(time.time()) - 540))
    assert answer.status_code == 200, answer.text
    assert event_count(settings) == 1


@pytest.mark.parametrize(
    ("signature", "timestamp", "reason"),
    [
        ("not base64 at all!", None, "malformed signature header"),
        ("QUJD", None, MISMATCH),  # base64, but not a DER signature
        ("A" * 400, None, "malformed signature header"),
        (None, "12 minutes ago", "malformed timestamp header"),
        (None, "-1", "malformed timestamp header"),
    ],
)
def test_a_malformed_signature_or_timestamp_is_refused(
    site: tuple[str, Settings],
    key: SigningKey,
    signature: str | None,
    timestamp: str | None,
    reason: str,
) -> None:
    url, settings = site
    body = body_of(BOUNCE)
    headers = key.sign(body)
    if signature is not None:
        headers[SIGNATURE] = signature
    if timestamp is not None:
        headers[TIMESTAMP] = timestamp
    _refused(url, settings, body, headers, reason)


def test_without_a_key_the_webhook_says_it_is_not_set_up(tmp_path: Path, key: SigningKey) -> None:
    settings = workspace(tmp_path, None, ["reader1@example.org"])
    with serve(settings) as base:
        answer = post(f"{base}/webhooks/sendgrid", key, BOUNCE)
    assert answer.status_code == 503
    assert answer.json()["error"].startswith(
        "the event webhook is not set up: set SENDGRID_WEBHOOK_PUBLIC_KEY"
    )
    assert event_count(settings) == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not-a-key", "not a base64 DER public key"),
        (SigningKey(ec.SECP384R1()).public_key, "not an ECDSA P-256 key"),
    ],
)
def test_an_unusable_key_is_a_503_naming_the_problem(
    tmp_path: Path, key: SigningKey, value: str, problem: str
) -> None:
    root = sample_workspace(tmp_path / "ws")
    write_env(root, SENDGRID_WEBHOOK_PUBLIC_KEY=value)
    with serve(load_settings(root)) as base:
        answer = post(f"{base}/webhooks/sendgrid", key, BOUNCE)
    assert answer.status_code == 503
    assert answer.json() == {
        "error": f"the event webhook is not set up: SENDGRID_WEBHOOK_PUBLIC_KEY is {problem}"
    }


def test_the_key_may_be_given_as_pem(tmp_path: Path, key: SigningKey) -> None:
    root = sample_workspace(tmp_path / "ws")
    pem = f"-----BEGIN PUBLIC KEY-----\\n{key.public_key}\\n-----END PUBLIC KEY-----"
    write_env(root, SENDGRID_WEBHOOK_PUBLIC_KEY=f'"{pem}"')
    settings = load_settings(root)
    assert "BEGIN PUBLIC KEY" in (settings.secrets.sendgrid_webhook_public_key or "")
    with serve(settings) as base:
        assert post(f"{base}/webhooks/sendgrid", key, BOUNCE).status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_methods_get_405(site: tuple[str, Settings], method: str) -> None:
    url, _ = site
    answer = httpx.request(method, url)
    assert answer.status_code == 405
    assert answer.json() == {"error": "method not allowed"}
    assert answer.headers["allow"] == "POST"


def test_a_replayed_post_is_stored_once(site: tuple[str, Settings], key: SigningKey) -> None:
    url, settings = site
    events = [event("delivered", f"reader{i}@example.org") for i in range(5)]
    body = body_of(events)
    headers = key.sign(body)
    first = httpx.post(url, content=body, headers=headers)
    again = httpx.post(url, content=body, headers=headers)  # as SendGrid retries, or a replay
    assert first.json()["stored"] == 5
    assert again.status_code == 200
    assert again.json() == {
        "received": 5,
        "stored": 0,
        "duplicates": 5,
        "malformed": 0,
        "subscribers_changed": 0,
    }
    # The same events in another order and key order, in a newly signed post.
    shuffled = [dict(reversed(list(e.items()))) for e in reversed(events)]
    assert post(url, key, shuffled).json()["duplicates"] == 5
    assert event_count(settings) == 5


def test_46_copies_of_one_event_in_one_post_are_stored_once(
    site: tuple[str, Settings], key: SigningKey
) -> None:
    url, settings = site
    copy = event("unsubscribe", "reader3@example.org")
    answer = post(url, key, [copy] * 46)
    assert answer.json() == {
        "received": 46,
        "stored": 1,
        "duplicates": 45,
        "malformed": 0,
        "subscribers_changed": 1,
    }
    assert event_count(settings) == 1
    assert len(rows(settings, "SELECT * FROM consent")) == 1
    # Same sg_event_id, different content (SendGrid's id is not enough): a second row.
    changed = {**copy, "timestamp": copy["timestamp"] + 1}
    assert post(url, key, [changed]).json()["stored"] == 1
    assert len(rows(settings, "SELECT * FROM consent")) == 1  # still unsubscribed once


def test_a_10000_event_post_is_stored_whole(site: tuple[str, Settings], key: SigningKey) -> None:
    url, settings = site
    kinds = ("processed", "delivered", "open", "click")
    events = [
        event(kinds[i % 4], f"reader{i % 12}@example.org", url=f"https://example.org/{i}")
        for i in range(10_000)
    ]
    body = body_of(events)
    assert len(body) > 2_000_000
    started = time.perf_counter()
    answer = httpx.post(url, content=body, headers=key.sign(body), timeout=120)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    assert answer.json()["stored"] == 10_000
    assert event_count(settings) == 10_000
    assert elapsed < 30, f"10,000 events took {elapsed:.1f} s"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b'[{"event": "delivered", "email": "reader1@example.org"', "the body is not JSON"),
        (b"", "the body is not JSON"),
        (
            '[{"event": "open", "email": "d\xe9j\xe0@example.org"}]'.encode("latin-1"),
            "the body is not UTF-8",
        ),
        (
            b'{"event": "delivered", "email": "reader1@example.org"}',
            "the body is not a JSON list of events",
        ),
        (
            b'[1, null, "delivered", {"email": "reader1@example.org"}]',
            "none of the 4 items is an event",
        ),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not JSON"),
        (b"[" + b"7" * 5000 + b"]", "the body is not JSON"),  # Python's int digit limit
    ],
)
def test_a_signed_body_that_holds_no_events_is_a_400(
    site: tuple[str, Settings], key: SigningKey, body: bytes, error: str
) -> None:
    url, settings = site
    answer = httpx.post(url, content=body, headers=key.sign(body))
    assert answer.status_code == 400
    assert answer.json() == {"error": error}
    assert event_count(settings) == 0


def test_malformed_items_beside_good_events_are_counted_and_dropped(
    site: tuple[str, Settings], key: SigningKey
) -> None:
    """A 200, so SendGrid does not post the same unreadable batch again for a day."""
    url, settings = site
    good = [event("spamreport", "reader4@example.org"), event("open", "reader5@example.org")]
    bad = [
        "delivered",
        {"email": "reader6@example.org"},
        {"event": "bounce", "type": "bounce"},
        {"event": "bounce", "email": "reader7@example.org", "timestamp": "yesterday"},
        {"event": "x" * 100, "email": "reader8@example.org"},
        {"event": "open", "email": "reader9@example.org", "timestamp": 10**30},
        {"event": "click", "email": "reader9@example.org", "url": "https://x.org/\ud800"},
    ]
    answer = post(url, key, [good[0], *bad, good[1]])
    assert answer.status_code == 200
    assert answer.json() == {
        "received": 9,
        "stored": 2,
        "duplicates": 0,
        "malformed": 7,
        "subscribers_changed": 1,
    }
    assert event_count(settings) == 2
    assert statuses(settings)["reader7@example.org"] == ("active", None)


def test_an_empty_list_is_fine(site: tuple[str, Settings], key: SigningKey) -> None:
    url, _ = site
    assert post(url, key, []).json()["received"] == 0


def test_an_oversized_body_is_a_413(site: tuple[str, Settings], key: SigningKey) -> None:
    url, settings = site
    big = b"[" + b" " * (33 * 1024 * 1024) + b"]"
    declared = httpx.post(url, content=big, headers=key.sign(big), timeout=60)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b"["
        for _ in range(33):
            yield b" " * (1024 * 1024)
        yield b"]"

    streamed = httpx.post(url, content=chunks(), headers=key.sign(b"[]"), timeout=60)
    assert streamed.status_code == 413
    assert event_count(settings) == 0


def test_a_busy_database_is_a_503_and_nothing_is_half_written(
    tmp_path: Path, key: SigningKey
) -> None:
    settings = workspace(tmp_path, key, ["reader1@example.org"])
    events = [event("bounce", "reader1@example.org", type="bounce")] + [
        event("delivered", f"other{i}@example.org") for i in range(1200)
    ]
    body = body_of(events)
    headers = key.sign(body)
    with serve(settings, busy_timeout_ms=300) as base:
        url = f"{base}/webhooks/sendgrid"
        holder = database(settings.workspace)
        try:
            with transaction(holder):  # BEGIN IMMEDIATE, as a send's claim does
                busy = httpx.post(url, content=body, headers=headers, timeout=30)
        finally:
            holder.close()
        assert busy.status_code == 503
        assert busy.json() == {"error": "unavailable, try again later"}
        assert busy.headers["retry-after"] == "30"
        assert event_count(settings) == 0
        assert statuses(settings)["reader1@example.org"] == ("active", None)
        retried = httpx.post(url, content=body, headers=headers, timeout=30)  # SendGrid retries
    assert retried.status_code == 200
    assert retried.json()["stored"] == 1201
    assert statuses(settings)["reader1@example.org"] == ("bounced", "sendgrid bounce")


@pytest.mark.sqlite_only  # counts SQLite's statements (the batching is shared code)
def test_events_are_written_in_short_batches(tmp_path: Path) -> None:
    """10,000 events: 20 transactions of 500, not one per event and not one for all."""
    from newsletter.audience.events import read_events, store_events

    settings = workspace(tmp_path, None, ["reader1@example.org"])
    conn = database(settings.workspace)
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    events, malformed = read_events(
        event("delivered", f"reader{i}@example.org") for i in range(10_000)
    )
    result = store_events(conn, events, time.time())
    conn.set_trace_callback(None)
    conn.close()
    assert (malformed, result.stored) == (0, 10_000)
    assert statements.count("BEGIN IMMEDIATE") == 20
    assert statements.count("COMMIT") == 20


def test_the_log_carries_no_body_key_or_signature(
    site: tuple[str, Settings], key: SigningKey, caplog: pytest.LogCaptureFixture
) -> None:
    url, _ = site
    secret_address = "private-reader@example.org"
    body = body_of([event("delivered", secret_address)])
    headers = key.sign(body)
    with caplog.at_level("DEBUG"):
        httpx.post(url, content=body, headers=headers)
        httpx.post(url, content=body + b"x", headers=headers)
        httpx.post(url, content=b"[", headers=key.sign(b"["))
    text = caplog.text
    assert "sendgrid webhook: 1 events, 1 stored" in text
    assert "refused (the signature does not match the body)" in text
    for secret in (secret_address, headers[SIGNATURE], key.public_key, json.dumps(body.decode())):
        assert secret not in text
