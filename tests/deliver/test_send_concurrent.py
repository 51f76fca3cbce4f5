"""Requests in flight (`[delivery] concurrency`): several batches at once against the stub,
with every guarantee of a sequential send kept: exact progress and summary, a key refused
stops every worker, a 429 holds every request, outbox and SMTP stay one at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.deliver.backends import Outcome
from newsletter.deliver.backends.sendgrid.mail import SendGridBackend
from newsletter.deliver.backends.sendgrid.pacing import SharedRateLimit
from newsletter.deliver.options import SendOptions
from newsletter.deliver.sender import Progress, Sender
from tests._cli import run
from tests._workspace import (
    add_subscribers,
    ledger_states,
    numbered,
    recipient,
    sample_workspace,
    simple_message,
    stub_env,
)
from tests.sendgrid_stub import TEST_API_KEY, SendGridStub


@pytest.fixture
def stub() -> Iterator[SendGridStub]:
    with SendGridStub(TEST_API_KEY, delay=0.05, jitter=0.05) as running:
        yield running


def _workspace(tmp_path: Path, stub: SendGridStub, count: int, delivery: str) -> Path:
    root = sample_workspace(tmp_path / "ws", delivery)
    stub_env(root, stub.url, api_key=TEST_API_KEY)
    add_subscribers(root, numbered(count))
    return root


def test_batches_go_out_several_at_once_and_the_progress_is_exact(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = _workspace(tmp_path, stub, 300, "batch_size = 10\nconcurrency = 8")
    seen: list[Progress] = []
    with Sender(load_settings(root), "sample", SendOptions(sync=False)) as sender:
        sender.preflight()
        summary = sender.send(seen.append)
    assert (summary.sent, summary.failed, summary.unknown, summary.requests) == (300, 0, 0, 30)
    assert 1 < stub.peak_in_flight <= 8
    assert stub.deliveries(issue="sample") == {email: 1 for email in numbered(300)}
    done = [p.done for p in seen]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 300
    assert [d for d in done if d not in (0, 300)] == list(range(10, 300, 10))
    assert set(ledger_states(root, "sample").values()) == {"sent"}


def test_a_lost_answer_among_many_is_listed_in_claim_order(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = _workspace(tmp_path, stub, 50, "batch_size = 5\nconcurrency = 4")
    stub.plan("202", "202", "drop_before_response", "202", "drop_before_response")
    outcome = run(root, "send", "sample", "--yes", "--no-sync")
    assert outcome.exit_code == 3, outcome.stderr
    assert "sent 40, skipped 0, failed 0, unknown 10 in" in outcome.stdout
    states = ledger_states(root, "sample")
    unknown = sorted(email for email, state in states.items() if state == "unknown")
    listed = [line.strip() for line in outcome.stdout.splitlines() if line.startswith("  ")]
    assert listed == unknown and len(listed) == 10


def test_a_key_refused_mid_send_stops_every_worker_at_once(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = _workspace(tmp_path, stub, 200, "batch_size = 10\nconcurrency = 4")
    # The first batch goes alone and is accepted; of the next four in flight, one is told
    # the key was revoked while the others get 500s and would retry after a backoff.
    stub.plan("202", "500", "401", "500", "500", *["202"] * 50)
    outcome = run(root, "send", "sample", "--yes", "--no-sync")
    assert outcome.exit_code == 4, outcome.stderr
    assert "SendGrid refused the API key (401" in outcome.stderr
    # No retry and no new batch after the 401: 1 + 4 requests in all.
    assert len(stub.requests) == 5
    states = ledger_states(root, "sample")
    assert sorted(e for e, s in states.items() if s == "sent") == numbered(10)
    assert {s for e, s in states.items() if e not in numbered(10)} == {"pending"}
    assert stub.deliveries(issue="sample") == {email: 1 for email in numbered(10)}


def test_the_first_request_goes_alone(tmp_path: Path, stub: SendGridStub) -> None:
    root = _workspace(tmp_path, stub, 100, "batch_size = 10\nconcurrency = 8")
    stub_env(root, stub.url, api_key="SG.revoked")
    outcome = run(root, "send", "sample", "--yes", "--no-sync")
    assert outcome.exit_code == 4
    assert len(stub.requests) == 1  # a refused key costs one request, not eight


def test_a_429_holds_every_request_until_the_reset(stub: SendGridStub) -> None:
    stub.rate_limit_reset_offset = 5
    stub.plan("429")
    waits: list[tuple[str, float]] = []
    backend = SendGridBackend(
        TEST_API_KEY, stub.url, sleep=lambda s: waits.append((threading.current_thread().name, s))
    )
    message = simple_message()
    told = threading.Thread(
        target=backend.send_batch, args=(message, [recipient("a@example.org")]), name="told"
    )
    told.start()
    told.join()
    other = backend.send_batch(message, [recipient("b@example.org")])  # started after the 429
    assert other.outcome == Outcome.SENT and other.requests == 1
    by_thread = dict(waits)
    assert set(by_thread) == {"told", threading.current_thread().name}
    assert all(4.0 <= seconds <= 7.0 for seconds in by_thread.values()), waits
    assert len(stub.requests) == 3


def test_an_answer_with_no_requests_remaining_holds_the_next_ones() -> None:
    now = [1000.0]
    limit = SharedRateLimit(lambda: now[0], max_wait=60.0)
    assert limit.hold({"X-RateLimit-Remaining": "5"}, refused=False) == 1000.0
    assert limit.pause(0.0) == 0.0
    until = limit.hold({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1003"}, refused=False)
    assert until == 1003.0 and limit.pause(0.0) == 3.0
    assert limit.pause(1003.0) == 0.0  # the one who was told already waited it out
    assert limit.hold({"X-RateLimit-Reset": "99999"}, refused=True) == 1060.0  # bounded
    assert limit.hold(None, refused=True) == 1060.0  # never shortened
    now[0] = 1061.0
    assert limit.pause(0.0) == 0.0


def test_halt_ends_a_backoff_at_once_and_sends_nothing_more(stub: SendGridStub) -> None:
    stub.plan("500", "500")
    backend = SendGridBackend(TEST_API_KEY, stub.url, backoff_initial=30.0, backoff_max=30.0)
    errors: list[Exception] = []

    def send() -> None:
        try:
            backend.send_batch(simple_message(), [recipient("a@example.org")])
        except Exception as exc:
            errors.append(exc)

    worker = threading.Thread(target=send)
    worker.start()
    deadline = time.monotonic() + 10
    while not stub.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    started = time.monotonic()
    backend.halt()
    worker.join(timeout=10)
    assert time.monotonic() - started < 5  # not the 30 s backoff
    assert len(stub.requests) == 1
    assert [type(e).__name__ for e in errors] == ["DeliveryError"]
    assert "before this batch's request went out" in str(errors[0])


@pytest.mark.parametrize("value", ["0", "65", '"eight"'])
def test_concurrency_outside_1_to_64_is_one_line_naming_the_setting(
    tmp_path: Path, value: str
) -> None:
    root = sample_workspace(tmp_path / "ws", f"concurrency = {value}")
    outcome = run(root, "status", "sample")
    assert outcome.exit_code == 1
    (line,) = outcome.stderr.splitlines()
    assert line.startswith(f"error: {root / 'newsletter.toml'}: [delivery.concurrency] ")
    if value != '"eight"':
        assert f"must be 1 to 64 requests in flight at once, not {value}" in line


def test_outbox_and_smtp_send_one_batch_at_a_time(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws", "concurrency = 16")
    settings = load_settings(root)
    for backend in ("outbox", "smtp"):
        with Sender(settings, "sample", SendOptions(backend=backend, dry_run=True)) as sender:
            assert sender.concurrency == 1
    with Sender(settings, "sample", SendOptions(backend="sendgrid", dry_run=True)) as sender:
        assert sender.concurrency == 16
