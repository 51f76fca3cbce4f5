"""SendGrid's suppression lists (unsubscribes, bounces, spam reports, invalid), page by page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from newsletter.deliver.backends.sendgrid import client
from newsletter.errors import DeliveryError

if TYPE_CHECKING:
    from newsletter.config import Settings

PAGE_SIZE = 500  # the largest page the suppression endpoints allow
MAX_PAGES = 10_000


class SuppressionClient:
    """Reads the suppression endpoints through the official client, page by page."""

    def __init__(self, api_key: str, host: str, *, timeout: float = client.DEFAULT_TIMEOUT) -> None:
        self._key = api_key
        self.host = host.rstrip("/")
        self._client = client.api_client(api_key, self.host, timeout)
        self.requests = 0

    def addresses(self, path: str) -> Iterator[str]:
        """Every address on a paginated list (limit/offset until a short page)."""
        offset = 0
        for _ in range(MAX_PAGES):
            page = self._get(path, {"limit": PAGE_SIZE, "offset": offset})
            for item in page:
                if isinstance(item, dict) and item.get("email"):
                    yield str(item["email"])
            if len(page) < PAGE_SIZE:
                return
            offset += len(page)

    def group_addresses(self, group_id: int) -> list[str]:
        page = self._get(f"asm/groups/{group_id}/suppressions", None)
        return [str(email) for email in page if isinstance(email, str)]

    def _get(self, path: str, query: dict[str, Any] | None) -> list[Any]:
        from python_http_client import exceptions

        endpoint = self._client.client
        for segment in path.split("/"):
            endpoint = endpoint._(segment)
        self.requests += 1
        try:
            response = endpoint.get(query_params=query)
        except exceptions.HTTPError as exc:
            raise self._refused(path, int(exc.status_code), exc.body) from None
        # URLError, timeouts, dropped connections, a request http.client refused to make:
        # a read, so no harm.
        except (OSError, ValueError, UnicodeError) as exc:
            raise DeliveryError(
                f"cannot read /v3/{path} ({client.network_reason(exc, self._key)})",
                where=self.host,
                fix="check the network and SENDGRID_API_HOST, or send with --no-sync"
                " ([delivery] sync_suppressions = false for cron)",
            ) from None
        try:
            payload = response.to_dict
        except ValueError:  # a 2xx answer that is not JSON: not SendGrid's API at that host
            payload = None
        if payload is not None and not isinstance(payload, list):
            payload = None
        if payload is None and response.body:
            raise DeliveryError(
                f"the answer to GET /v3/{path} is not a SendGrid list (not JSON)",
                where=self.host,
                fix="check that SENDGRID_API_HOST is SendGrid's API (or remove it), or send "
                "with --no-sync",
            )
        return list(payload or [])

    def _refused(self, path: str, status: int, body: bytes | None) -> Exception:
        text = client.masked(client.error_text(body), self._key) or "no details given"
        if status in (401, 403):
            return client.refused(status, text, f"list /v3/{path}", "Suppressions: Read")
        return DeliveryError(
            f"SendGrid answered {status} to GET /v3/{path}: {text}",
            where=self.host,
            fix="try again later, or send with --no-sync ([delivery] sync_suppressions = false"
            " for cron)",
        )


def client_for(settings: Settings) -> SuppressionClient:
    key = client.api_key(settings, "; sync reads SendGrid's suppression lists")
    return SuppressionClient(key, settings.secrets.sendgrid_api_host)
