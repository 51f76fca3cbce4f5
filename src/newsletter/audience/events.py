"""SendGrid's events: read, stored once each, and applied to the subscribers at once.

SendGrid posts events in batches and repeats them (retries, and one case of 46 copies of
one event is on record), so an event is stored under a digest of its whole content: the
same event posted again is recognised whatever its `sg_event_id` says. The events that
say an address must not be mailed again change its subscriber in the same transaction as
the event row, so the next send needs no suppression sync:

    bounce (type "bounce"; "blocked" is a temporary refusal) -> bounced
    dropped: "Invalid", "Bounced Address"                    -> bounced
    dropped: "Spam Reporting Address"                        -> complained
    spamreport                                               -> complained
    unsubscribe, group_unsubscribe                           -> unsubscribed (+ consent record)

Only an active or pending subscriber changes: nobody is re-activated (group_resubscribe is
stored, nothing more), someone already inactive keeps their first status, and an address
that is not on the list changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from newsletter.audience.addresses import lookup_key
from newsletter.audience.consent import add_record
from newsletter.audience.records import Status, chunked
from newsletter.db import transaction

if TYPE_CHECKING:
    from newsletter.db import Connection

# Events per transaction: short enough that a send waiting for the write lock waits
# milliseconds, long enough that a 10,000-event post costs 20 commits, not 10,000.
STORE_BATCH = 500
MAX_NAME_CHARS = 64
CONSENT_METHOD = "sendgrid"
_DROPPED = {
    "invalid": (Status.BOUNCED, "sendgrid dropped: invalid address"),
    "invalid address": (Status.BOUNCED, "sendgrid dropped: invalid address"),
    "bounced address": (Status.BOUNCED, "sendgrid dropped: bounced address"),
    "spam reporting address": (Status.COMPLAINED, "sendgrid dropped: spam reporting address"),
}
_UNSUBSCRIBES = {
    "unsubscribe": "sendgrid unsubscribe",
    "group_unsubscribe": "sendgrid group unsubscribe",
}


class MalformedEvent(ValueError):
    """An item of a webhook body that is not an event SendGrid would send; says why."""


@dataclass(frozen=True)
class Event:
    """One event as stored: the columns of the `events` table."""

    digest: str
    event: str
    email: str
    email_key: str
    sg_event_id: str | None
    issue: str | None
    occurred: int | None
    url: str | None
    reason: str | None
    bounce_type: str | None
    machine_open: bool
    ip: str | None

    def status_change(self) -> tuple[Status, str] | None:
        """The status this event gives an active subscriber, with its reason, if any."""
        if self.event == "bounce" and self.bounce_type in (None, "bounce"):
            return Status.BOUNCED, "sendgrid bounce"
        if self.event == "spamreport":
            return Status.COMPLAINED, "sendgrid spam report"
        if self.event == "dropped" and self.reason:
            return _DROPPED.get(self.reason.strip().lower())
        if self.event in _UNSUBSCRIBES:
            return Status.UNSUBSCRIBED, _UNSUBSCRIBES[self.event]
        return None


@dataclass(frozen=True)
class Stored:
    """What storing one webhook body did."""

    received: int  # readable events in the body, duplicates included
    stored: int  # new rows
    duplicates: int  # events already stored (or repeated within the body)
    subscribers_changed: int


def digest(item: dict[str, Any]) -> str:
    """SHA-256 of the event's canonical JSON: equal content, equal digest, any key order."""
    canonical = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        data = canonical.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON "\ud800"): SQLite cannot store it
        raise MalformedEvent("not valid Unicode") from None
    return hashlib.sha256(data).hexdigest()


def read_event(item: Any) -> Event:
    """One item of a webhook body as an Event; raises MalformedEvent."""
    if not isinstance(item, dict):
        raise MalformedEvent("not a JSON object")
    name = item.get("event")
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
        raise MalformedEvent("no event name")
    email = item.get("email")
    if not isinstance(email, str) or not email.strip():
        raise MalformedEvent("no email address")
    occurred = item.get("timestamp")
    if occurred is not None and (
        isinstance(occurred, bool) or not isinstance(occurred, int) or not 0 <= occurred < 2**62
    ):
        raise MalformedEvent("timestamp is not a time in whole seconds")
    return Event(
        digest=digest(item),
        event=name,
        email=email.strip(),
        email_key=lookup_key(email),
        sg_event_id=_text(item, "sg_event_id"),
        # SendGrid flattens custom_args into the event; a `send --test` message is no
        # reader's copy of the issue, so its events count for no issue.
        issue=None if str(item.get("test", "")).lower() == "true" else _text(item, "issue"),
        occurred=occurred,
        url=_text(item, "url") if name == "click" else None,
        reason=_text(item, "reason"),
        bounce_type=_text(item, "type") if name == "bounce" else None,
        machine_open=name == "open" and item.get("sg_machine_open") is True,
        ip=_text(item, "ip"),
    )


def read_events(items: Iterable[Any]) -> tuple[list[Event], int]:
    """The readable events among `items`, and how many were not."""
    events: list[Event] = []
    malformed = 0
    for item in items:
        try:
            events.append(read_event(item))
        except MalformedEvent:
            malformed += 1
    return events, malformed


def store_events(conn: Connection, events: Sequence[Event], received_at: float) -> Stored:
    """Store `events` (each once, ever) and apply them, in transactions of STORE_BATCH.

    A failure part-way (the database busy for too long) leaves whole batches stored and
    none half-written; SendGrid posts the body again and the digests skip what is there.
    """
    now = dt.datetime.fromtimestamp(received_at, dt.UTC).replace(microsecond=0).isoformat()
    stored = changed = 0
    for batch in chunked(events, STORE_BATCH):
        with transaction(conn):
            cursor = conn.executemany(
                "INSERT INTO events (digest, sg_event_id, event, email_key, issue, "
                "occurred, url, reason, bounce_type, machine_open, received) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (
                    (
                        e.digest,
                        e.sg_event_id,
                        e.event,
                        e.email_key,
                        e.issue,
                        e.occurred,
                        e.url,
                        e.reason,
                        e.bounce_type,
                        int(e.machine_open),
                        now,
                    )
                    for e in batch
                ),
            )
            stored += cursor.rowcount
            changed += _apply(conn, batch, now)
    return Stored(len(events), stored, len(events) - stored, changed)


def _apply(conn: Connection, batch: Iterable[Event], now: str) -> int:
    """Change the subscribers these events say must not be mailed; return how many changed.

    Idempotent without looking at which rows were new: only an active or pending
    subscriber changes, so an event seen before finds them changed already.
    """
    changed = 0
    for event in batch:
        change = event.status_change()
        if change is None:
            continue
        status, reason = change
        cursor = conn.execute(
            "UPDATE subscribers SET status = ?, status_reason = ?, updated = ? "
            "WHERE email_key = ? AND status IN (?, ?)",
            (status, reason, now, event.email_key, Status.ACTIVE, Status.PENDING),
        )
        if cursor.rowcount == 0:
            continue
        changed += 1
        if status == Status.UNSUBSCRIBED:
            # The same record `consent.record_unsubscribe` writes for a link or a button.
            method = _consent_method(event.event)
            add_record(
                conn, event.email_key, "unsubscribe", method, event.issue, event.ip, None, now
            )
    return changed


def _consent_method(event: str) -> str:
    """How the reader left, as reports tell it: SendGrid's own link, or its group page."""
    return f"{CONSENT_METHOD} group" if event == "group_unsubscribe" else CONSENT_METHOD


def _text(item: dict[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
