"""What a claim hands the sender: a batch of recipients, made from the ledger's rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

# subscriber id, attempts, email, name, first name, fields, ledger row id
PendingRow = tuple[int, int, str, str | None, str | None, str, int]


class Recipient(NamedTuple):
    """One recipient of a claimed batch (a tuple: a million are made per million sent)."""

    subscriber_id: int
    email: str
    name: str | None
    first_name: str | None
    fields: dict[str, str]


@dataclass(frozen=True)
class Batch:
    """Recipients claimed together for one request.

    `attempt` is 1 on a first try, and one more than the most tries any of its recipients
    had before (a released, failed or requeued row comes back with its count).
    """

    id: int
    issue: str
    recipients: list[Recipient]
    attempt: int


def recipients_of(rows: list[PendingRow]) -> list[Recipient]:
    return [
        Recipient(
            subscriber_id=subscriber_id,
            email=email,
            name=name,
            first_name=first_name,
            fields=json.loads(fields) if fields != "{}" else {},
        )
        for subscriber_id, _, email, name, first_name, fields, _ in rows
    ]
