"""SendGrid v3 mail/send through the official client: one request per batch.

Faults are sorted by one question: could the request have been delivered?
- 429, 5xx, and connection errors raised while connecting or sending (urllib's URLError):
  not delivered; retried with backoff (429 waits as X-RateLimit-Reset says).
- 400/415 and other 4xx: refused; the batch fails with SendGrid's own error text.
- 413: refused for its size; the caller splits the batch.
- 401/403: the key is refused; stop at once (AuthError), never retried.
- a timeout or a dropped connection while waiting for the answer: may have been delivered;
  the batch is `unknown` and is not retried.
"""

from __future__ import annotations

import http.client
import random
import socket
import ssl
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
from newsletter.deliver.backends.sendgrid.request import SendGridRequest
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


class _Retryable(Exception):
    """The request was provably not delivered; trying again is safe."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait  # what the service asked for (429); else the backoff decides


class SendGridBackend:
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
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        notify: Notify | None = None,
    ) -> None:
        self._key = api_key
        self.host = host.rstrip("/")
        self.max_batch_size = batch_size
        self._client = api_client(api_key, self.host, timeout)
        self._max_attempts = max_attempts
        self._backoff = wait_exponential_jitter(initial=backoff_initial, max=backoff_max)
        self._max_rate_limit_wait = max_rate_limit_wait
        self._sleep = sleep
        self._clock = clock
        self._notify = notify or (lambda _message: None)
        self._requests: dict[int, SendGridRequest] = {}
        self.timings: dict[str, float] = {"build": 0.0, "http": 0.0}
        self.requests = 0

    # -- the Backend interface

    def describe(self) -> str:
        return f"sendgrid ({self.host})"

    def close(self) -> None:
        self._requests.clear()

    def send_batch(self, message: Message, recipients: Sequence[RecipientLike]) -> BatchResult:
        started = time.perf_counter()
        encoded = self._builder(message).encode(recipients)
        self.timings["build"] += time.perf_counter() - started
        if encoded.size > REQUEST_BYTES_BUDGET:
            return BatchResult(
                Outcome.TOO_LARGE,
                error=f"the request would be {encoded.size:,} bytes (SendGrid: under 30 MB)",
                requests=0,
            )
        attempts = 0

        def attempt() -> BatchResult:
            nonlocal attempts
            attempts += 1
            return self._post(encoded.payload)

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
        builder = self._requests.get(id(message))
        if builder is None or builder.message is not message:
            builder = self._requests[id(message)] = SendGridRequest(message)
        return builder

    def _post(self, payload: str) -> BatchResult:
        from python_http_client import exceptions

        started = time.perf_counter()
        self.requests += 1
        try:
            response = self._client.client.mail.send.post(
                request_body=payload, request_headers={"Content-Type": JSON_UTF8}
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
            self.timings["http"] += time.perf_counter() - started
        message_id = response.headers.get("X-Message-Id") if response.headers else None
        return BatchResult(Outcome.SENT, message_id=message_id)

    def _refused(self, status: int, body: bytes | None, headers: Any) -> BatchResult:
        text = masked(error_text(body), self._key) or "no details given"
        said = f"SendGrid answered {status}: {text}"
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
            raise _Retryable(said, self._rate_limit_wait(headers))
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

    def _rate_limit_wait(self, headers: Any) -> float:
        reset = headers.get("X-RateLimit-Reset") if headers is not None else None
        try:
            wait = float(str(reset)) - self._clock()
        except (TypeError, ValueError):
            wait = 1.0
        return min(max(wait, 0.0), self._max_rate_limit_wait) + random.uniform(0, RATE_LIMIT_JITTER)

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
