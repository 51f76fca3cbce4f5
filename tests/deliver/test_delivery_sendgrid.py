"""The SendGrid backend: the official client against the local stub, every fault kind."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from newsletter.deliver.backends import Outcome
from newsletter.deliver.backends.sendgrid.mail import SendGridBackend
from newsletter.deliver.message import Message
from newsletter.errors import AuthError, ConfigError, DeliveryError
from tests._workspace import recipient, simple_message
from tests.sendgrid_stub import (
    TEST_API_KEY,
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

ISSUE = "spring"
BATCH = [recipient(f"reader{i}@example.org", f"Reader {i}", "Reader") for i in range(5)]


class Sleeps:
    """Records the waits instead of sleeping through them."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


def backend_for(
    url: str, *, key: str = TEST_API_KEY, sleep: Sleeps | None = None, **kwargs: float
) -> SendGridBackend:
    return SendGridBackend(key, url, sleep=sleep or Sleeps(), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def message() -> Message:
    return simple_message()


def test_202_sends_the_batch_in_one_request_with_the_message_id(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    result = backend_for(sendgrid_stub.url).send_batch(message, BATCH)
    assert result.outcome == Outcome.SENT
    assert result.requests == 1
    (record,) = sendgrid_stub.requests
    assert record.status == 202 and result.message_id == record.message_id
    assert sendgrid_stub.deliveries(issue=ISSUE) == {r.email: 1 for r in BATCH}
    assert [p["to"][0]["email"] for p in record.body["personalizations"]] == [
        r.email for r in BATCH
    ]


def test_400_fails_the_batch_with_sendgrids_error_text(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    duplicate = [*BATCH, recipient("READER0@example.org")]
    result = backend_for(sendgrid_stub.url).send_batch(message, duplicate)
    assert result.outcome == Outcome.FAILED
    assert result.error is not None
    assert result.error.startswith("SendGrid answered 400: Each email address in the")
    assert "(field personalizations.5.to)" in result.error
    assert sendgrid_stub.deliveries() == {}


@pytest.mark.parametrize("status", ["401", "403"])
def test_401_and_403_stop_at_once_without_retrying(
    sendgrid_stub: SendGridStub, message: Message, status: str
) -> None:
    sendgrid_stub.plan(status)
    sleeps = Sleeps()
    with pytest.raises(AuthError) as caught:
        backend_for(sendgrid_stub.url, sleep=sleeps).send_batch(message, BATCH)
    assert caught.value.exit_code == 4
    assert f"SendGrid refused the API key ({status}:" in caught.value.line()
    assert len(sendgrid_stub.requests) == 1 and sleeps.seconds == []


def test_a_wrong_key_is_refused_and_never_echoed(
    sendgrid_stub: SendGridStub, message: Message, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "SG.wrong-key-that-must-not-leak"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AuthError) as caught:
        backend_for(sendgrid_stub.url, key=wrong).send_batch(message, BATCH)
    assert wrong not in caught.value.line()
    assert wrong not in caplog.text
    assert logging.getLogger("python_http_client.client").getEffectiveLevel() > logging.DEBUG


def test_413_is_reported_as_too_large(sendgrid_stub: SendGridStub, message: Message) -> None:
    sendgrid_stub.plan("413")
    result = backend_for(sendgrid_stub.url).send_batch(message, BATCH)
    assert result.outcome == Outcome.TOO_LARGE
    assert result.error == "SendGrid answered 413: content too large"


def test_a_body_over_the_size_limit_is_never_sent(sendgrid_stub: SendGridStub) -> None:
    huge = simple_message(html="<p>%%first_name%%</p>" + "x" * 29_500_000)
    result = backend_for(sendgrid_stub.url).send_batch(huge, BATCH[:1])
    assert result.outcome == Outcome.TOO_LARGE and result.requests == 0
    assert sendgrid_stub.requests == []


def test_429_waits_until_the_rate_limit_resets_then_retries(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    sendgrid_stub.rate_limit_reset_offset = 7
    sendgrid_stub.plan("429", "429")
    sleeps = Sleeps()
    result = backend_for(sendgrid_stub.url, sleep=sleeps).send_batch(message, BATCH)
    assert result.outcome == Outcome.SENT and result.requests == 3
    assert len(sleeps.seconds) == 2
    for seconds in sleeps.seconds:
        assert 5.0 <= seconds <= 9.0  # the reset (7 s, rounded up to a second) plus jitter
    assert sendgrid_stub.deliveries(issue=ISSUE) == {r.email: 1 for r in BATCH}


def test_a_far_rate_limit_reset_is_waited_for_only_a_bounded_time(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    sendgrid_stub.rate_limit_reset_offset = 3600
    sendgrid_stub.plan("429")
    sleeps = Sleeps()
    backend = backend_for(sendgrid_stub.url, sleep=sleeps, max_rate_limit_wait=60.0)
    assert backend.send_batch(message, BATCH).outcome == Outcome.SENT
    assert 60.0 <= sleeps.seconds[0] <= 61.0


def test_500_then_202_retries_with_backoff(sendgrid_stub: SendGridStub, message: Message) -> None:
    sendgrid_stub.plan("500", "503")
    sleeps = Sleeps()
    result = backend_for(sendgrid_stub.url, sleep=sleeps).send_batch(message, BATCH)
    assert result.outcome == Outcome.SENT and result.requests == 3
    assert len(sleeps.seconds) == 2 and all(0 < s <= 30 for s in sleeps.seconds)
    assert sendgrid_stub.deliveries(issue=ISSUE) == {r.email: 1 for r in BATCH}


def test_5xx_without_end_gives_up_with_nothing_sent(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    sendgrid_stub.plan(*["500"] * 10)
    backend = backend_for(sendgrid_stub.url, max_attempts=3)
    with pytest.raises(DeliveryError) as caught:
        backend.send_batch(message, BATCH)
    assert caught.value.line().startswith(
        f"{sendgrid_stub.url}: SendGrid did not take the request after 3 attempts "
        "(SendGrid answered 500: internal server error)"
    )
    assert len(sendgrid_stub.requests) == 3


def test_a_dropped_connection_after_sending_makes_the_batch_unknown(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    sendgrid_stub.plan("drop_before_response")
    sleeps = Sleeps()
    result = backend_for(sendgrid_stub.url, sleep=sleeps).send_batch(message, BATCH)
    assert result.outcome == Outcome.UNKNOWN
    assert result.error is not None and "it may have been delivered" in result.error
    assert sleeps.seconds == [], "an unknown batch is never retried"
    # The stub did deliver it: retrying would have sent everyone the issue twice.
    assert sendgrid_stub.deliveries(issue=ISSUE) == {r.email: 1 for r in BATCH}


def test_a_timeout_while_waiting_for_the_answer_makes_the_batch_unknown(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    sendgrid_stub.plan("slow:3")
    started = time.monotonic()
    result = backend_for(sendgrid_stub.url, timeout=0.5).send_batch(message, BATCH)
    assert time.monotonic() - started < 2.5
    assert result.outcome == Outcome.UNKNOWN
    assert result.error is not None and result.error.startswith("no answer in time")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_is_retried_then_given_up(message: Message) -> None:
    sleeps = Sleeps()
    backend = backend_for(f"http://127.0.0.1:{_closed_port()}", sleep=sleeps, max_attempts=4)
    with pytest.raises(DeliveryError) as caught:
        backend.send_batch(message, BATCH)
    assert "after 4 attempts (could not connect: [Errno 111] Connection refused)" in str(
        caught.value
    )
    assert len(sleeps.seconds) == 3


def test_a_wrong_host_path_is_a_configuration_error(
    sendgrid_stub: SendGridStub, message: Message
) -> None:
    with pytest.raises(ConfigError) as caught:
        backend_for(sendgrid_stub.url + "/nope").send_batch(message, BATCH)
    assert "answered 404 to POST /v3/mail/send" in caught.value.line()


def test_the_client_has_a_timeout(sendgrid_stub: SendGridStub) -> None:
    backend = backend_for(sendgrid_stub.url)
    assert backend._client.client.timeout == 60.0


def test_the_key_stays_out_of_logs_even_when_debug_is_turned_on_later(
    sendgrid_stub: SendGridStub, message: Message, caplog: pytest.LogCaptureFixture
) -> None:
    backend = backend_for(sendgrid_stub.url)
    caplog.set_level(logging.DEBUG)
    logging.getLogger().setLevel(logging.DEBUG)
    backend.send_batch(message, BATCH)
    assert TEST_API_KEY not in caplog.text
