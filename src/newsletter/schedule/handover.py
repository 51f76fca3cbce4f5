"""Scheduling through SendGrid: the batch id, the hand-over ahead of time, and `cancel`.

An issue scheduled `--via-sendgrid` is handed over by the cron run during the hour before
its time, every request carrying `send_at` and one `batch_id`, so SendGrid sends it on
the minute and `cancel` can stop it until 10 minutes before. `sendgrid_batches` keeps the
batch id and the range of ledger batches sent under it, so a cancel puts back exactly
the recipients SendGrid was holding.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.db import transaction
from newsletter.deliver.backends.sendgrid.batches import BatchClient, sendgrid_batches_for
from newsletter.deliver.ledger import Ledger
from newsletter.errors import UserError
from newsletter.schedule.due_lock import due_lock
from newsletter.schedule.send_time import aware_utc
from newsletter.schedule.store import (
    Schedule,
    claim_batch,
    forget_cancelled,
    get_schedule,
    handed_over_range,
    not_scheduled_error,
    open_schedule_database,
    record_through_batch,
    unschedule,
)

if TYPE_CHECKING:
    from newsletter.db import Connection

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings

# One logger name for scheduled sending, as the run log showed before the module split.
log = logging.getLogger("newsletter.schedule")


# --------------------------------------------------------------------------- hand-over


@dataclass(frozen=True)
class Handover:
    """What SendGrid needs to hold an issue until its time: `send_at` and `batch_id`."""

    send_at: int  # unix seconds
    batch_id: str


def hand_over(
    conn: Connection,
    settings: Settings,
    item: Schedule,
    batches: Callable[[Settings], BatchClient],
) -> Handover | None:
    """The issue's SendGrid batch id (created once, kept across resumed runs).

    None when the issue was unscheduled since the cron run read its list.
    """
    send_at = int(item.send_at.timestamp())
    if item.batch_id is not None:
        return Handover(send_at, item.batch_id)
    batch_id = batches(settings).create_batch()
    last = Ledger(conn).last_batch_id(item.issue) or 0
    if not claim_batch(conn, item.issue, batch_id, last):
        return None
    log.info("%s: created SendGrid batch %s", item.issue, batch_id)
    return Handover(send_at, batch_id)


def record_handed_over(conn: Connection, slug: str) -> None:
    """The last ledger batch sent under the issue's SendGrid batch id, for `cancel`."""
    record_through_batch(conn, slug, Ledger(conn).last_batch_id(slug))


# --------------------------------------------------------------------------- cancel


@dataclass(frozen=True)
class Cancelled:
    schedule: Schedule
    at_sendgrid: bool  # False: nothing had been handed over; it was only unscheduled
    requeued: int = 0


def cancel(
    settings: Settings,
    slug: str,
    now: dt.datetime,
    *,
    batches: Callable[[Settings], BatchClient] = sendgrid_batches_for,
    lock_class: type[BaseFileLock] | None = None,
) -> Cancelled:
    """Stop a scheduled issue: at SendGrid if handed over (until 10 min before), else locally.

    Holds the cron lock, so no run hands more of the issue over meanwhile. After a
    cancel at SendGrid the recipients it held are pending again in the ledger: a later
    `send` or `schedule` reaches them, and nobody gets the issue twice.
    """
    now = aware_utc(now)
    with due_lock(settings, now, lock_class=lock_class):
        conn = open_schedule_database(settings)
        try:
            item = get_schedule(conn, slug)
            if item is None:
                raise not_scheduled_error(slug)
            if not item.submitted:
                unschedule(conn, slug)
                return Cancelled(item, at_sendgrid=False)
            assert item.batch_id is not None
            if now > item.cancel_deadline:
                when = "went out" if now >= item.send_at else "goes out"
                raise UserError(
                    f"too late to cancel {slug}: it {when} {item.describe()}, and SendGrid "
                    f"takes cancellations only until 10 minutes before "
                    f"({item.local_time(item.cancel_deadline):%H:%M}); it is "
                    f"{item.local_time(now):%H:%M} now",
                    fix="nothing was changed",
                )
            client = batches(settings)
            if client.status(item.batch_id) != "cancel":
                client.cancel(item.batch_id)
            log.info("%s: SendGrid batch %s cancelled", slug, item.batch_id)
            requeued = _release_handed_over(conn, slug)
            return Cancelled(item, at_sendgrid=True, requeued=requeued)
        finally:
            conn.close()


def _release_handed_over(conn: Connection, slug: str) -> int:
    """Forget the schedule and put the recipients of the cancelled batch back to pending.

    Only ledger batches created after the handover began are touched (SendGrid holds
    exactly those under the cancelled batch id).
    """
    with transaction(conn):
        after, through = handed_over_range(conn, slug)
        requeued = Ledger(conn).requeue_batches(slug, after, through)
        forget_cancelled(conn, slug)
    return requeued
