"""SendGrid v3 mail/send through the official client: one request per batch.

Faults are sorted by one question: could the request have been delivered?
- 429, 5xx, and connection errors raised while connecting or sending (urllib's URLError):
  not delivered; retried with backoff (429 waits as X-RateLimit-Reset says, and holds
  every other request in flight until then: one `SharedRateLimit` for the backend).
- 400/415 and other 4xx: refused; the batch fails with SendGrid's own error text.
- 413: refused for its size; the caller splits the batch.
- 401/403: the key is refused; stop at once (AuthError), never retried, and `halt` every
  other batch in flight: none of them starts a new attempt.
- a timeout or a dropped connection while waiting for the answer: may have been delivered;
  the batch is `unknown` and is not retried.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
import threading
import time
import urllib.error
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from newsletter.deliver.backends import BatchResult, Notify, Outcome
from newsletter.deliver.backends.sendgrid.client import (
    DEFAULT_TIMEOUT,
    api_client,
    api_key,
    error_text,
    masked,
    refused,
)
from newsletter.deliver.backends.sendgrid.limits import REQUEST_BYTES_BUDGET
from newsletter.deliver.backends.sendgrid.pacing import SharedRateLimit
from newsletter.deliver.backends.sendgrid.request import EncodedRequest, SendGridRequest
from newsletter.deliver.message import Message, RecipientLike
from newsletter.errors import AuthError, ConfigError, DeliveryError

if TYPE_CHECKING:
    from newsletter.config import Settings

MAX_ATTEMPTS = 6
MAX_RATE_LIMIT_WAIT = 60.0
RATE_LIMIT_JITTER = 1.0
# A pre-encoded body is passed through as is when the content type is not exactly
# "application/json" (python-http-client); SendGrid accepts the charset parameter.
JSON_UTF8 = "application/json; charset=utf-8"


class _Body(str):
    """A request body as python-http-client takes it, encoded into `_Bytes`."""

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _Bytes(str.encode(self, encoding, errors))


class _Bytes(bytes):
    """An encoded body that formats as its length. python-http-client builds a debug
    message with the whole body in it before every request, logged or not: the repr of a
    1,000-recipient body is milliseconds of CPU (and of the interpreter lock) per request."""

    def __format__(self, spec: str) -> str:
        return f"<{len(self):,} bytes>"


class _Retryable(Exception):
    """The request was provably not delivered; trying again is safe."""

    def __init__(self, reason: str, wait: float | None = None, until: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait  # what the service asked for (429); else the backoff decides
        self.until = until  # the shared hold this wait covers (429)


class SendGridBackend:
    """Safe to call from several threads at once: one client, one rate limit, one halt."""

    name = "sendgrid"
    unit = "request"

    def __init__(
        self,
        api_key: str,
        host: str,
        *,
        batch_size: int = 1000,
        timeout: float = DEFAULT_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        max_rate_limit_wait: float = MAX_RATE_LIMIT_WAIT,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.time,
        notify: Notify | None = None,
    ) -> None:
        self._key = api_key
        self.host = host.rstrip("/")
        self.max_batch_size = batch_size
        self._client = api_client(api_key, self.host, timeout)
        self._max_attempts = max_attempts
        self._backoff = wait_exponential_jitter(multiplier=backoff_initial, max=backoff_max)
        self._halted = threading.Event()
        # Waits end early on `halt`: a stopped send does not sit out a backoff.
        self._sleep = sleep or self._sleep_unless_halted
        self._clock = clock
        self._notify = notify or (lambda _message: None)
        self._rate_limit = SharedRateLimit(clock, max_rate_limit_wait)
        self._lock = threading.Lock()  # the counters and the request builders
        self._requests: dict[int, SendGridRequest] = {}
        self.timings: dict[str, float] = {"build": 0.0, "http": 0.0}
        self.requests = 0

    # -- the Backend interface

    def describe(self) -> str:
        return f"sendgrid ({self.host})"

    def close(self) -> None:
        self.halt()
        with self._lock:
            self._requests.clear()

    def halt(self) -> None:
        """No new attempt starts after this, in any thread; waits in progress end now."""
        self._halted.set()

    def _sleep_unless_halted(self, seconds: float) -> None:
        self._halted.wait(seconds)

    def send_batch(self, message: Message, recipients: Sequence[RecipientLike]) -> BatchResult:
        return self.send_prepared(self.prepare(message, recipients))

    def prepare(self, message: Message, recipients: Sequence[RecipientLike]) -> EncodedRequest:
        """The request body of one batch: the CPU-bound half of `send_batch`.

        The sender runs it in the thread that claims batches, so the threads waiting on
        SendGrid hold the interpreter lock only briefly and never delay the ledger.
        """
        started = time.perf_counter()
        encoded = self._builder(message).encode(recipients)
        self._count("build", time.perf_counter() - started)
        return encoded

    def send_prepared(self, encoded: EncodedRequest) -> BatchResult:
        """The network half of `send_batch`: post the body, with retries."""
        if encoded.size > REQUEST_BYTES_BUDGET:
            return BatchResult(
                Outcome.TOO_LARGE,
                error=f"the request would be {encoded.size:,} bytes (SendGrid: under 30 MB)",
                requests=0,
            )
        attempts = 0
        waited_until = 0.0  # the rate-limit hold this batch already slept through

        def attempt() -> BatchResult:
            nonlocal attempts, waited_until
            self._pace(waited_until)
            attempts += 1
            try:
                return self._post(encoded.payload)
            except _Retryable as exc:
                waited_until = max(waited_until, exc.until)
                raise

        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self._max_attempts),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            result = retrying(attempt)
        except _Retryable as exc:
            raise DeliveryError(
                f"SendGrid did not take the request after {attempts} attempts ({exc.reason})",
                where=self.host,
                fix="nothing of this batch was sent; run the same command again later",
            ) from None
        return BatchResult(result.outcome, result.message_id, result.error, requests=attempts)

    # -- one request

    def _builder(self, message: Message) -> SendGridRequest:
        with self._lock:
            builder = self._requests.get(id(message))
            if builder is None or builder.message is not message:
                builder = self._requests[id(message)] = SendGridRequest(message)
            return builder

    def _count(self, part: str, seconds: float, requests: int = 0) -> None:
        with self._lock:
            self.timings[part] += seconds
            self.requests += requests

    def _pace(self, waited_until: float) -> None:
        """Wait out a rate-limit hold another request was told of; refuse after `halt`."""
        pause = self._rate_limit.pause(waited_until)
        if pause > 0 and not self._halted.is_set():
            self._notify(f"rate limited; every request waits {pause:.1f} s")
            self._sleep(pause + random.uniform(0, RATE_LIMIT_JITTER))
        if self._halted.is_set():
            raise DeliveryError(
                "the send stopped before this batch's request went out",
                fix="nothing of this batch was sent; run the same command again",
            )

    def _post(self, payload: str) -> BatchResult:
        from python_http_client import exceptions

        started = time.perf_counter()
        self._count("http", 0.0, requests=1)
        try:
            response = self._client.client.mail.send.post(
                request_body=_Body(payload), request_headers={"Content-Type": JSON_UTF8}
            )
        except exceptions.HTTPError as exc:
            return self._refused(int(exc.status_code), exc.body, exc.headers)
        except urllib.error.URLError as exc:
            raise self._not_connected(exc) from None
        except (ValueError, UnicodeError) as exc:
            # http.client checks the URL, headers and body before it writes a byte.
            raise DeliveryError(
                f"the request could not be made ({masked(str(exc), self._key)})",
                where="SENDGRID_API_KEY / SENDGRID_API_HOST",
                fix="check both settings; nothing of this batch was sent",
            ) from None
        except (TimeoutError, http.client.HTTPException, OSError) as exc:
            # Raised while waiting for the answer: the body was sent and may have been taken.
            return BatchResult(Outcome.UNKNOWN, error=self._lost(exc))
        finally:
            self._count("http", time.perf_counter() - started)
        self._rate_limit.hold(response.headers, refused=False)
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return BatchResult(Outcome.SENT, message_id=message_id)

    def _refused(self, status: int, body: bytes | None, headers: Any) -> BatchResult:
        text = masked(error_text(body), self._key) or "no details given"
        said = f"SendGrid answered {status}: {text}"
        if status in (401, 403, 404, 405):  # every other request would be refused too
            self.halt()
        if status == 401 and "credits" in text.lower():
            raise refused(status, text, "send mail", "Mail Send")
        if status in (401, 403):
            raise AuthError(
                f"SendGrid refused the API key ({status}: {text})",
                fix="check SENDGRID_API_KEY in .env: it must be valid and have the "
                "Mail Send permission; nothing of this batch was sent",
            )
        if status in (404, 405):
            raise ConfigError(
                f"{self.host} answered {status} to POST /v3/mail/send",
                where="SENDGRID_API_HOST",
                fix="set it to https://api.sendgrid.com (or remove it)",
            )
        if status == 429:
            until = self._rate_limit.hold(headers, refused=True)
            wait = max(until - self._clock(), 0.0) + random.uniform(0, RATE_LIMIT_JITTER)
            raise _Retryable(said, wait, until)
        if status >= 500:
            raise _Retryable(said)
        if status == 413:
            return BatchResult(Outcome.TOO_LARGE, error=said)
        return BatchResult(Outcome.FAILED, error=said)

    def _not_connected(self, exc: urllib.error.URLError) -> Exception:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError | socket.gaierror):
            return DeliveryError(
                f"cannot reach {self.host} ({reason})",
                where="SENDGRID_API_HOST",
                fix="check the address and the network; nothing was sent",
            )
        return _Retryable(f"could not connect: {masked(str(reason), self._key)}")

    def _lost(self, exc: BaseException) -> str:
        kind = "no answer in time" if isinstance(exc, TimeoutError) else "connection dropped"
        detail = masked(str(exc), self._key) or type(exc).__name__
        return f"{kind} after the request was sent ({detail}): it may have been delivered"

    # -- waiting

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.wait is not None:
            return exc.wait
        return float(self._backoff(state))

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        reason = exc.reason if isinstance(exc, _Retryable) else str(exc)
        self._notify(f"{reason}; retrying in {seconds:.1f} s")


def create(settings: Settings, notify: Notify) -> SendGridBackend:
    return SendGridBackend(
        api_key(settings, ", or send with --backend outbox"),
        settings.secrets.sendgrid_api_host,
        batch_size=settings.file.delivery.batch_size,
        notify=notify,
    )
