"""`subscribers sync`: pull SendGrid's suppression lists and mark those subscribers.

SendGrid drops mail to suppressed addresses by itself; syncing first keeps the list honest
(statuses, counts before a send) and keeps those addresses out of our requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from newsletter.audience.records import Status
from newsletter.audience.store import SubscriberStore
from newsletter.deliver.backends.sendgrid.suppressions import SuppressionClient

# (label, path under /v3, status given to a subscriber on it)
LISTS: tuple[tuple[str, str, Status], ...] = (
    ("global unsubscribes", "suppression/unsubscribes", Status.UNSUBSCRIBED),
    ("bounces", "suppression/bounces", Status.BOUNCED),
    ("spam reports", "suppression/spam_reports", Status.COMPLAINED),
    ("invalid emails", "suppression/invalid_emails", Status.BOUNCED),
)

if TYPE_CHECKING:
    from newsletter.db import Connection
GROUP_LABEL = "group {group_id} unsubscribes"


@dataclass
class SyncReport:
    fetched: dict[str, int] = field(default_factory=dict)  # label -> addresses on the list
    marked: dict[str, int] = field(default_factory=dict)  # label -> subscribers changed
    requests: int = 0

    @property
    def total_marked(self) -> int:
        return sum(self.marked.values())


def sync_suppressions(
    conn: Connection,
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
        lists.insert(1, (GROUP_LABEL.format(group_id=group_id), "", Status.UNSUBSCRIBED))
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
