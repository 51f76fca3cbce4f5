"""Sending an issue: preflight, suppression sync, the ledger loop, faults, the summary.

`Sender` is used in two steps so that the CLI can ask before anything is sent::

    with Sender(settings, "2026-12-01", SendOptions()) as sender:
        preflight = sender.preflight()      # build, checks, sync, counts: nothing sent
        summary = sender.send(progress)     # the ledger loop

The ledger protocol: a batch is claimed (`sending`) before its request goes out and
marked after the answer; a request that provably did not go out is released, one whose
answer was lost is `unknown` and is not sent again unless the editor asks.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Self

from newsletter.db import rolled_back
from newsletter.deliver.backends import (
    Backend,
    BatchResult,
    Outcome,
    capabilities,
    create_backend,
    names,
    resolve_name,
)
from newsletter.deliver.lock import SEND_LOCK_FILE, take_lock
from newsletter.deliver.message import Message, message_for
from newsletter.deliver.options import SendOptions
from newsletter.deliver.preflight import (
    Preflight,
    build_for_sending,
    refuse_placeholders,
    unsubscribe_links,
)
from newsletter.errors import (
    DeliveryError,
    NewsletterError,
    UserError,
)

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings
    from newsletter.deliver.dry_run import DryRun
    from newsletter.deliver.ledger import Ledger, Recipient
    from newsletter.deliver.suppressions import SyncReport

# A connection that keeps losing answers is not worth feeding more batches into.
MAX_UNKNOWN_IN_A_ROW = 3
KEPT_ADDRESSES = 1000


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    note: str | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass
class Summary:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    requests: int = 0
    unit: str = "request"
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    unknown_addresses: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, error)
    stopped: NewsletterError | None = None  # why the run ended early, if it did
    warnings: list[str] = field(default_factory=list)  # the build's, shown before sending

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failed and not self.unknown


class Sender:
    """One send of one issue, holding the workspace send lock from start to end."""

    def __init__(
        self,
        settings: Settings,
        slug: str,
        options: SendOptions | None = None,
        *,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.slug = slug
        self.options = options or SendOptions()
        self.backend_name = (
            backend.name if backend else resolve_name(settings, self.options.backend)
        )
        held = self.options.send_at is not None or self.options.batch_id is not None
        if held and not capabilities(self.backend_name).holds_until_send_at:
            raise UserError(
                f"only SendGrid can hold a send until its time, not {self.backend_name}",
                fix="schedule without --via-sendgrid, or use the sendgrid backend",
            )
        self._backend = backend
        self._clock = clock
        self._lock: BaseFileLock | None = None
        self._workspace_writable = True  # False: a dry run of a read-only workspace
        self._conn: sqlite3.Connection | None = None
        self._message: Message | None = None
        self._notes: list[str] = []
        self.rehearsal = False
        self.warnings: list[str] = []

    # -- lifecycle

    def __enter__(self) -> Self:
        from newsletter.db import open_database

        if self.options.dry_run and not os.access(self.settings.workspace, os.W_OK):
            # Nothing to lock against: nobody who runs this can send from here either.
            self._conn = open_database(self.settings.database_path, scratch_copy=True)
            self._workspace_writable = False
            return self
        self._lock = take_lock(
            self.settings.workspace / SEND_LOCK_FILE,
            busy="another send is running in this workspace",
            busy_fix="wait for it to finish; the lock goes when that process ends",
        )
        try:
            self._conn = open_database(self.settings.database_path)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._backend is not None:
            self._backend.close()
        if self._conn is not None:
            self._conn.close()
        if self._lock is not None:
            self._lock.release()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("use Sender as a context manager")
        return self._conn

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = create_backend(self.backend_name, self.settings, self._notes.append)
        return self._backend

    @property
    def backend_if_created(self) -> Backend | None:
        return self._backend

    @property
    def message(self) -> Message:
        if self._message is None:
            build = build_for_sending(self.settings, self.slug, keep=self._workspace_writable)
            self.warnings += [f"[{f.code}] {f.message}" for f in build.findings]
            refuse_placeholders(self.settings, build, self.backend_name)
            links = unsubscribe_links(
                self.settings, self.backend_name, self.warnings, rehearsal=self.rehearsal
            )
            message = message_for(self.settings, build, links)
            if self.options.send_at is not None or self.options.batch_id is not None:
                message = replace(
                    message, send_at=self.options.send_at, batch_id=self.options.batch_id
                )
            self._message = message
        return self._message

    # -- before sending

    def preflight(self) -> Preflight:
        """Build, check, sync and count; what is committed is only what is already true."""
        from newsletter.audience.store import SubscriberStore
        from newsletter.deliver.ledger import SENT, UNKNOWN, Ledger

        ledger = Ledger(self.conn)
        recovered = ledger.recover(self.slug)
        with rolled_back(self.conn):  # as this send will see it; nothing kept yet
            view = Ledger(self.conn)
            view.forget_rehearsals(self.slug, self.rehearsals())
            self._refuse_if_finished(view)
            before = view.counts(self.slug)
        message = self.message
        backend = self.backend
        sync = self.options.sync and self.settings.file.delivery.sync_suppressions
        lists = capabilities(self.backend_name).suppression_lists
        report = self._sync() if sync and lists else None
        with rolled_back(self.conn):
            rehearsal = Ledger(self.conn)
            self.requeue(rehearsal)
            counts = rehearsal.counts(self.slug)
        return Preflight(
            slug=self.slug,
            subject=message.subject,
            sender=message.sender.formatted(),
            backend=backend.describe(),
            recipients=counts["pending"],
            active=SubscriberStore(self.conn).stats()["active"],
            already_sent=before[SENT] if not self.options.resend else 0,
            unknown_held=counts[UNKNOWN],
            recovered=recovered,
            sync=report,
            warnings=self.warnings,
        )

    def _refuse_if_finished(self, ledger: Ledger) -> None:
        from newsletter.deliver.ledger import SENT

        # was_sent: a run that found nobody to send to leaves a ledger that is "complete".
        again = self.options.resend or self.options.new_subscribers
        if ledger.is_complete(self.slug) and ledger.was_sent(self.slug) and not again:
            sent = ledger.counts(self.slug)[SENT]
            raise UserError(
                f"issue {self.slug!r} was already sent to {sent:,} recipient"
                f"{'' if sent == 1 else 's'}",
                fix=f"nothing to do; `newsletter send {self.slug} --new-subscribers` sends it "
                f"to those who subscribed since, `--resend` to every active subscriber again",
            )

    def _sync(self) -> SyncReport:
        from newsletter.deliver.backends.sendgrid.suppressions import client_for
        from newsletter.deliver.suppressions import sync_suppressions

        return sync_suppressions(
            self.conn, client_for(self.settings), self.settings.file.delivery.asm_group_id
        )

    def rehearsals(self) -> list[str]:
        """The backends whose sends this one must not count as the issue going out."""
        if capabilities(self.backend_name).rehearsal:
            return []
        return [name for name in names() if capabilities(name).rehearsal]

    def requeue(self, ledger: Ledger) -> None:
        from newsletter.deliver.ledger import FAILED, SENT, SKIPPED, UNKNOWN

        ledger.forget_rehearsals(self.slug, self.rehearsals())
        states = {FAILED}  # refused requests: never delivered, so always tried again
        if self.options.resend:
            states |= {SENT, UNKNOWN, SKIPPED}
        elif self.options.resend_unknown:
            states.add(UNKNOWN)
        ledger.requeue(self.slug, states)
        ledger.prepare(self.slug, newcomers=self.options.new_subscribers)

    # -- sending

    def send(self, progress: ProgressCallback | None = None) -> Summary:
        from newsletter.deliver.ledger import PENDING, SKIPPED, Ledger

        report = progress or (lambda _progress: None)
        message = self.message
        backend = self.backend
        ledger = Ledger(self.conn)
        summary = Summary(unit=backend.unit, warnings=list(self.warnings))
        database = 0.0
        started = self._clock()

        @contextmanager
        def timed() -> Iterator[None]:
            nonlocal database
            mark = time.perf_counter()
            try:
                yield
            finally:
                database += time.perf_counter() - mark

        with timed():
            ledger.recover(self.slug)
            ledger.forget_rehearsals(self.slug, self.rehearsals())
            self._refuse_if_finished(ledger)
            self.requeue(ledger)
            counts = ledger.counts(self.slug)
        total, skipped_before = counts[PENDING], counts[SKIPPED]
        requests_before = backend.requests
        sizes: list[int] = []  # batch sizes to claim next, after a split
        in_a_row = 0
        done = 0
        report(Progress(0, total))
        while True:
            size = sizes.pop(0) if sizes else backend.max_batch_size
            with timed():
                batch = ledger.claim_batch(self.slug, size, self.backend_name)
            if batch is None:
                break
            recipients = batch.recipients
            try:
                result = backend.send_batch(message, recipients)
            except NewsletterError as error:  # nothing of the batch went out
                with timed():
                    ledger.release(batch.id)
                summary.stopped = error
                break
            except Exception as exc:  # a fault the backend could not place: it may have gone
                with timed():
                    ledger.mark_unknown(batch.id, f"{type(exc).__name__}: {exc}")
                summary.unknown += len(recipients)
                _keep(summary.unknown_addresses, (r.email for r in recipients))
                summary.stopped = DeliveryError(
                    f"the {backend.name} backend failed ({type(exc).__name__}); the batch "
                    "in flight may have been delivered and is recorded as unknown",
                    fix=f"see `newsletter status {self.slug}`, fix the cause, then run the "
                    "same command again",
                )
                break
            except KeyboardInterrupt:
                with timed():
                    ledger.mark_unknown(batch.id, "interrupted while sending")
                summary.unknown += len(recipients)
                _keep(summary.unknown_addresses, (r.email for r in recipients))
                summary.stopped = DeliveryError(
                    "interrupted",
                    fix=f"run `newsletter send {self.slug}` again to send the rest",
                )
                break
            with timed():
                split = self._record(ledger, batch.id, recipients, result, summary)
            if result.outcome == Outcome.PARTIAL:
                done += result.delivered
                summary.stopped = DeliveryError(result.error or "stopped part-way")
                break
            if split:
                sizes[:0] = split
                continue
            done += len(recipients)
            in_a_row = in_a_row + 1 if result.outcome == Outcome.UNKNOWN else 0
            report(Progress(done, total, self._take_note()))
            if in_a_row >= MAX_UNKNOWN_IN_A_ROW:
                summary.stopped = DeliveryError(
                    f"{in_a_row} requests in a row lost their answer; stopped to avoid "
                    "leaving more recipients unknown",
                    fix="check the network, then run the same command again",
                )
                break
        with timed():
            summary.skipped = ledger.counts(self.slug)[SKIPPED] - skipped_before
        if summary.stopped is None:
            report(Progress(total, total))
        summary.requests = backend.requests - requests_before
        summary.seconds = self._clock() - started
        summary.timings = {"database": database, **backend.timings}
        return summary

    def _record(
        self,
        ledger: Ledger,
        batch_id: int,
        recipients: Sequence[Recipient],
        result: BatchResult,
        summary: Summary,
    ) -> list[int]:
        """Write the outcome; return the sizes to claim next when the batch must be split."""
        count = len(recipients)
        if result.outcome == Outcome.SENT:
            ledger.mark_sent(batch_id, result.message_id)
            summary.sent += count
        elif result.outcome == Outcome.UNKNOWN:
            ledger.mark_unknown(batch_id, result.error or "answer lost")
            summary.unknown += count
            _keep(summary.unknown_addresses, (r.email for r in recipients))
        elif result.outcome == Outcome.PARTIAL and 0 < result.delivered < count:
            ledger.release_from(batch_id, recipients[result.delivered].subscriber_id)
            ledger.mark_sent(batch_id, result.message_id)
            summary.sent += result.delivered
        elif result.outcome == Outcome.TOO_LARGE and count > 1:
            ledger.release(batch_id)
            self._notes.append(f"request too large; splitting {count:,} recipients in two")
            return [count // 2, count - count // 2]
        else:
            error = result.error or "refused"
            ledger.mark_failed(batch_id, error)
            summary.failed += count
            if len(summary.failures) < KEPT_ADDRESSES:
                summary.failures.extend((r.email, error) for r in recipients)
        return []

    def dry_run(self) -> DryRun:
        """Everything but the network: every request built and checked; nothing written."""
        from newsletter.deliver.dry_run import rehearse

        return rehearse(self)

    def _take_note(self) -> str | None:
        if not self._notes:
            return None
        note = self._notes[-1]
        self._notes.clear()
        return note


def _keep(kept: list[str], addresses: Iterator[str]) -> None:
    for address in addresses:
        if len(kept) >= KEPT_ADDRESSES:
            return
        kept.append(address)
