"""What a subscriber row holds beyond its address: its status and its custom fields.

Shared by the store and the CSV import, which write the same rows in batches.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from enum import StrEnum
from typing import TypeVar

_CHUNK = 5000
T = TypeVar("T")


class Status(StrEnum):
    """A subscriber's status, stored as its string (a member equals its value)."""

    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    PENDING = "pending"  # signed up through the form, not yet confirmed (double opt-in)


STATUSES: tuple[Status, ...] = tuple(Status)
INACTIVE = frozenset(STATUSES) - {Status.ACTIVE}


def dump_fields(fields: dict[str, str] | None) -> str:
    """The `fields` column: compact JSON, "{}" for none."""
    if not fields:
        return "{}"
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def chunked(items: Iterable[T], size: int = _CHUNK) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter), for batched SQL."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
