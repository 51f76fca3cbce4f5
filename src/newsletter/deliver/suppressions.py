"""`subscribers sync`: pull SendGrid's suppression lists and mark those subscribers.

SendGrid drops mail to suppressed addresses by itself; syncing first keeps the list honest
(statuses, counts before a send) and keeps those addresses out of our requests.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from newsletter.audience.store import BOUNCED, COMPLAINED, UNSUBSCRIBED, SubscriberStore
from newsletter.deliver.backends.sendgrid.mail import (
    DEFAULT_TIMEOUT,
    api_key,
    error_text,
    masked,
    quiet_client_loggers,
    refused,
)
from newsletter.errors import DeliveryError

PAGE_SIZE = 500  # the largest page the suppression endpoints allow
MAX_PAGES = 10_000

# (label, path under /v3, status given to a subscriber on it)
LISTS: tuple[tuple[str, str, str], ...] = (
    ("global unsubscribes", "suppression/unsubscribes", UNSUBSCRIBED),
    ("bounces", "suppression/bounces", BOUNCED),
    ("spam reports", "suppression/spam_reports", COMPLAINED),
    ("invalid emails", "suppression/invalid_emails", BOUNCED),
)
GROUP_LABEL = "group {group_id} unsubscribes"


@dataclass
class SyncReport:
    fetched: dict[str, int] = field(default_factory=dict)  # label -> addresses on the list
    marked: dict[str, int] = field(default_factory=dict)  # label -> subscribers changed
    requests: int = 0

    @property
    def total_marked(self) -> int:
        return sum(self.marked.values())


class SuppressionClient:
    """Reads the suppression endpoints through the official client, page by page."""

    def __init__(self, api_key: str, host: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        from sendgrid import SendGridAPIClient

        quiet_client_loggers()
        self._key = api_key
        self.host = host.rstrip("/")
        self._client = SendGridAPIClient(api_key, host=self.host)
        self._client.client.timeout = timeout
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
        except OSError as exc:  # URLError, timeouts, dropped connections: a read, so no harm
            raise DeliveryError(
                f"cannot read /v3/{path} ({masked(str(exc), self._key)})",
                where=self.host,
                fix="check the network and SENDGRID_API_HOST, or send with --no-sync"
                " ([delivery] sync_suppressions = false for cron)",
            ) from None
        return list(response.to_dict or [])

    def _refused(self, path: str, status: int, body: bytes | None) -> Exception:
        text = masked(error_text(body), self._key) or "no details given"
        if status in (401, 403):
            return refused(status, text, f"list /v3/{path}", "Suppressions: Read")
        return DeliveryError(
            f"SendGrid answered {status} to GET /v3/{path}: {text}",
            where=self.host,
            fix="try again later, or send with --no-sync ([delivery] sync_suppressions = false"
            " for cron)",
        )


def sync_suppressions(
    conn: sqlite3.Connection,
    client: SuppressionClient,
    group_id: int | None,
    progress: Callable[[str], None] | None = None,
) -> SyncReport:
    """Pull every list and mark the subscribers on it.

    Each list is read in full before it is applied, so no write transaction waits on the
    network (a cron send may be waiting for the database).
    """
    store = SubscriberStore(conn)
    report = SyncReport()
    lists = list(LISTS)
    if group_id is not None:
        lists.insert(1, (GROUP_LABEL.format(group_id=group_id), "", UNSUBSCRIBED))
    for label, path, status in lists:
        emails = (
            client.group_addresses(group_id)
            if not path and group_id is not None
            else list(client.addresses(path))
        )
        report.fetched[label] = len(emails)
        report.marked[label] = store.apply_suppressions(emails, status, f"SendGrid {label}")
        if progress is not None:
            progress(label)
    report.requests = client.requests
    return report


def client_for(settings: Any) -> SuppressionClient:
    key = api_key(settings, "; sync reads SendGrid's suppression lists")
    return SuppressionClient(key, settings.secrets.sendgrid_api_host)
