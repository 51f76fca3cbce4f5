"""What readers do themselves: sign up, confirm, unsubscribe, each kept as a consent record.

Every change here is one short transaction: the subscriber's status and the record of
who asked, when, from where and through which form or link.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from newsletter.audience.addresses import clean_name, lookup_key, normalize_email
from newsletter.audience.records import Status
from newsletter.db import transaction, utc_now

if TYPE_CHECKING:
    from newsletter.db import Connection


class SignupOutcome(StrEnum):
    """What a signup did; the reader is told the same thing in every case."""

    NEW = "new"  # a pending subscriber was added: send the confirmation
    AGAIN = "again"  # pending, unsubscribed or active already: send the confirmation again
    BLOCKED = "blocked"  # bounced or complained: no message is sent


@dataclass(frozen=True)
class Signup:
    outcome: SignupOutcome
    address: str
    name: str | None


def record_unsubscribe(
    conn: Connection, address: str, method: str, issue: str | None, ip: str | None
) -> bool:
    """Unsubscribe `address` at once; True if that changed anything (idempotent).

    An address that is no longer on the list is kept as unsubscribed, so that no later
    import can add it back as active.
    """
    key = lookup_key(address)
    now = utc_now()
    with transaction(conn):
        row = conn.execute("SELECT status FROM subscribers WHERE email_key = ?", (key,)).fetchone()
        if row is not None and row[0] in (Status.UNSUBSCRIBED, Status.BOUNCED, Status.COMPLAINED):
            return False
        if row is None:
            conn.execute(
                "INSERT INTO subscribers (email, email_key, status, status_reason, source, "
                "created, updated) VALUES (?, ?, 'unsubscribed', ?, 'unsubscribe link', ?, ?)",
                (address.strip(), key, method, now, now),
            )
        else:
            conn.execute(
                "UPDATE subscribers SET status = 'unsubscribed', status_reason = ?, updated = ? "
                "WHERE email_key = ?",
                (method, now, key),
            )
        add_record(conn, key, "unsubscribe", method, issue, ip, None, now)
    return True


def record_signup(
    conn: Connection, raw_address: str, name: str | None, ip: str | None, form: str
) -> Signup:
    """A signup through the form: a new address becomes `pending` until confirmed.

    Raises InvalidAddress for an address that cannot be a subscriber's.
    """
    address, key = normalize_email(raw_address)
    name = clean_name(name)
    now = utc_now()
    with transaction(conn):
        row = conn.execute("SELECT status FROM subscribers WHERE email_key = ?", (key,)).fetchone()
        details = json.dumps({"form": form, "email": address, "name": name}, ensure_ascii=False)
        add_record(conn, key, "signup", "form", None, ip, details, now)
        if row is None:
            conn.execute(
                "INSERT INTO subscribers (email, email_key, name, status, source, created, "
                "updated) VALUES (?, ?, ?, 'pending', 'signup form', ?, ?)",
                (address, key, name, now, now),
            )
            return Signup(SignupOutcome.NEW, address, name)
    if row[0] in (Status.BOUNCED, Status.COMPLAINED):
        return Signup(SignupOutcome.BLOCKED, address, name)
    return Signup(SignupOutcome.AGAIN, address, name)


def confirm_signup(conn: Connection, address: str, ip: str | None) -> bool:
    """The reader confirmed through the link mailed to them: active from now on.

    False when there is nothing to confirm (no such subscriber, or one who complained or
    bounced since).
    """
    key = lookup_key(address)
    now = utc_now()
    with transaction(conn):
        row = conn.execute("SELECT status FROM subscribers WHERE email_key = ?", (key,)).fetchone()
        if row is None or row[0] in (Status.COMPLAINED, Status.BOUNCED):
            return False  # an old link must not re-activate an address that bounced
        if row[0] != Status.ACTIVE:
            conn.execute(
                "UPDATE subscribers SET status = 'active', status_reason = NULL, updated = ? "
                "WHERE email_key = ?",
                (now, key),
            )
            add_record(conn, key, "confirm", "link", None, ip, None, now)
    return True


def recent_signups(
    conn: Connection, *, ip: str | None = None, address: str | None = None, hours: int = 1
) -> int:
    """Signups in the last `hours`, from one IP address or for one email address."""
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)).replace(microsecond=0)
    column, value = ("ip", ip) if ip is not None else ("email_key", lookup_key(address or ""))
    (count,) = conn.execute(
        f"SELECT count(*) FROM consent WHERE {column} = ? AND action = 'signup' AND created >= ?",
        (value, since.isoformat()),
    ).fetchone()
    return int(count)


def add_record(
    conn: Connection,
    key: str,
    action: str,
    method: str,
    issue: str | None,
    ip: str | None,
    form: str | None,
    now: str,
) -> None:
    conn.execute(
        "INSERT INTO consent (email_key, action, method, issue, ip, form, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key, action, method, issue, ip, form, now),
    )
