"""SendGrid's batch ids and scheduled sends: what lets a handed-over issue be cancelled."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.deliver.backends.sendgrid import client
from newsletter.errors import DeliveryError

if TYPE_CHECKING:
    from newsletter.config import Settings


class BatchClient(Protocol):
    """SendGrid's batch and scheduled-sends endpoints."""

    def create_batch(self) -> str: ...
    def cancel(self, batch_id: str) -> None: ...
    def status(self, batch_id: str) -> str | None: ...


class SendGridBatches:
    """POST /v3/mail/batch and /v3/user/scheduled_sends through the official client."""

    TIMEOUT = 30.0

    def __init__(self, api_key: str, host: str) -> None:
        self._key = api_key
        self.host = host.rstrip("/")
        self._client = client.api_client(api_key, self.host, self.TIMEOUT)

    def create_batch(self) -> str:
        body = self._call("POST /v3/mail/batch", lambda: self._client.client.mail.batch.post())
        batch_id = body.get("batch_id") if isinstance(body, dict) else None
        if not isinstance(batch_id, str) or not batch_id:
            raise DeliveryError(
                f"SendGrid answered POST /v3/mail/batch without a batch_id ({body!r:.200})",
                where=self.host,
            )
        return batch_id

    def cancel(self, batch_id: str) -> None:
        request = {"batch_id": batch_id, "status": "cancel"}
        self._call(
            "POST /v3/user/scheduled_sends",
            lambda: self._client.client.user.scheduled_sends.post(request_body=request),
        )

    def status(self, batch_id: str) -> str | None:
        """ "cancel" or "pause" if the batch is stopped, else None."""
        body = self._call(
            "GET /v3/user/scheduled_sends/{batch_id}",
            lambda: self._client.client.user.scheduled_sends._(batch_id).get(),
        )
        items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        for item in items:
            if isinstance(item, dict) and item.get("batch_id") == batch_id:
                return str(item.get("status")) if item.get("status") else None
        return None

    def _call(self, what: str, request: Callable[[], Any]) -> Any:
        import urllib.error

        from python_http_client import exceptions

        try:
            response = request()
        except exceptions.HTTPError as exc:
            status = int(exc.status_code)
            text = client.masked(client.error_text(exc.body), self._key) or "no details given"
            if status in (401, 403):
                raise client.refused(status, text, what, "Mail Send and Scheduled Sends") from None
            raise DeliveryError(
                f"SendGrid answered {status} to {what}: {text}", where=self.host
            ) from None
        except (urllib.error.URLError, OSError, ValueError, UnicodeError) as exc:
            raise DeliveryError(
                f"cannot reach SendGrid for {what} ({client.network_reason(exc, self._key)})",
                where=self.host,
                fix="check SENDGRID_API_HOST and the network, then try again",
            ) from None
        raw = response.body
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None


def sendgrid_batches_for(settings: Settings) -> BatchClient:
    key = client.api_key(
        settings, "; scheduling through SendGrid needs it, or schedule without --via-sendgrid"
    )
    return SendGridBatches(key, settings.secrets.sendgrid_api_host)
