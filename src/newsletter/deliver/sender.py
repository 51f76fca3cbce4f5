"""Sending an issue: preflight, suppression sync, the ledger loop, faults, the summary.

`Sender` is used in two steps so that the CLI can ask before anything is sent::

    with Sender(settings, "2026-12-01", SendOptions()) as sender:
        preflight = sender.preflight()      # build, checks, sync, counts: nothing sent
        summary = sender.send(progress)     # the ledger loop

The ledger protocol: a batch is claimed (`sending`) before its request goes out and
marked after the answer; a request that provably did not go out is released, one whose
answer was lost is `unknown` and is not sent again unless the editor asks. Up to
`[delivery] concurrency` batches are in flight at once (send_loop.py, in_flight.py).

On SQLite one send runs in a workspace at a time (the workspace send lock). On PostgreSQL
several may send one issue at once, from one workspace or from several hosts: each claims
rows the others have not (row locks), and each summary counts what that sender did.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Self, cast

from newsletter.db import PgConnection, PostgresTarget, is_postgres, rolled_back
from newsletter.db.postgres import ISSUE_CLASS, issue_key
from newsletter.deliver.backends import (
    Backend,
    BatchResult,
    ConcurrentBackend,
    capabilities,
    create_backend,
    rehearsal_backends,
    resolve_name,
)
from newsletter.deliver.in_flight import in_flight
from newsletter.deliver.lock import SEND_LOCK_FILE, take_lock
from newsletter.deliver.message import Message, message_for
from newsletter.deliver.options import SendOptions
from newsletter.deliver.preflight import (
    Preflight,
    build_for_sending,
    refuse_placeholders,
    unsubscribe_links,
)
from newsletter.deliver.preparation import CHUNK_BATCHES
from newsletter.deliver.send_loop import (
    KEPT_ADDRESSES,
    MAX_UNKNOWN_IN_A_ROW,
    Progress,
    ProgressCallback,
    SendLoop,
    Summary,
)
from newsletter.errors import LockBusy, UserError

if TYPE_CHECKING:
    from newsletter.db import Connection

# The loop's names are the sender's public names too.
__all__ = [
    "KEPT_ADDRESSES",
    "MAX_UNKNOWN_IN_A_ROW",
    "Progress",
    "ProgressCallback",
    "Sender",
    "Summary",
]

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings
    from newsletter.deliver.dry_run import DryRun
    from newsletter.deliver.ledger import Ledger, Recipient
    from newsletter.deliver.suppressions import SyncReport


class Sender:
    """One send of one issue, holding the workspace send lock from start to end (SQLite)."""

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
        self._conn: Connection | None = None
        self._message: Message | None = None
        self._notes: list[str] = []
        self._preflighted = False
        self.rehearsal = False
        self.warnings: list[str] = []

    # -- lifecycle

    def __enter__(self) -> Self:
        from newsletter.db import open_database

        if self.options.dry_run and not os.access(self.settings.workspace, os.W_OK):
            # Nothing to lock against: nobody who runs this can send from here either.
            self._conn = open_database(self.settings.database, scratch_copy=True)
            self._workspace_writable = False
            return self
        target = self.settings.database
        if not isinstance(target, PostgresTarget):
            # On PostgreSQL, senders on other hosts could not see this lock anyway: there
            # the ledger's row locks and sender keys keep several senders apart.
            self._lock = take_lock(
                self.settings.workspace / SEND_LOCK_FILE,
                busy="another send is running in this workspace",
                busy_fix="wait for it to finish; the lock goes when that process ends",
            )
        try:
            self._conn = open_database(target)
            if isinstance(self._conn, PgConnection):
                self._share_issue(self._conn)
        except BaseException:
            if self._conn is not None:
                self._conn.close()
            if self._lock is not None:
                self._lock.release()
            raise
        return self

    def _share_issue(self, conn: PgConnection) -> None:
        """PostgreSQL: senders of one issue may work side by side, but `--resend` (which puts
        back what the others may be sending) only alone. Held until the connection closes."""
        alone = self.options.resend
        if conn.try_lock(ISSUE_CLASS, issue_key(self.slug), shared=not alone):
            return
        if alone:
            raise LockBusy(
                f"another send of {self.slug!r} is running, and --resend must run alone",
                fix="wait for it to finish, then run the --resend again",
            )
        raise LockBusy(
            f"a --resend of {self.slug!r} is running",
            fix="wait for it to finish; it sends to everyone",
        )

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
    def conn(self) -> Connection:
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
        from newsletter.deliver.ledger import PENDING, SENT, UNKNOWN, Ledger

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
        active = SubscriberStore(self.conn).stats()["active"]
        if sum(before.values()) == 0:
            # Nothing taken yet: the send will take every active subscriber as pending and
            # find nothing to put back. Counted, not rehearsed: on a big list the rehearsal
            # wrote (and undid) a row per subscriber, a second prepare for every first send.
            counts = {**before, PENDING: active}
        else:
            with rolled_back(self.conn):
                rehearsal = Ledger(self.conn)
                self.requeue(rehearsal, rows=0)  # rows not written yet are counted
                counts = rehearsal.counts(self.slug)
        result = Preflight(
            slug=self.slug,
            subject=message.subject,
            sender=message.sender.readable(),
            backend=backend.describe(),
            recipients=counts["pending"],
            active=active,
            already_sent=before[SENT] if not self.options.resend else 0,
            unknown_held=counts[UNKNOWN],
            recovered=recovered,
            sync=report,
            warnings=self.warnings,
        )
        self._preflighted = True
        return result

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
        return rehearsal_backends()

    def requeue(self, ledger: Ledger, *, rows: int | None = None) -> None:
        """Put back what this send sends again, and take the recipients (`rows`: how many
        of a first preparation's rows to write now, see `Ledger.prepare`)."""
        from newsletter.deliver.ledger import FAILED, SENT, SKIPPED, UNKNOWN

        ledger.forget_rehearsals(self.slug, self.rehearsals())
        states = {FAILED}  # refused requests: never delivered, so always tried again
        if self.options.resend:
            states |= {SENT, UNKNOWN, SKIPPED}
        elif self.options.resend_unknown:
            states.add(UNKNOWN)
        ledger.requeue(self.slug, states)
        ledger.prepare(self.slug, newcomers=self.options.new_subscribers, rows=rows)

    # -- sending

    def send(self, progress: ProgressCallback | None = None) -> Summary:
        from newsletter.deliver.ledger import PENDING, Ledger

        message = self.message
        backend = self.backend
        ledger = Ledger(self.conn)
        started = self._clock()
        loop = SendLoop(
            ledger,
            backend,
            self.slug,
            backend_name=self.backend_name,
            report=progress or (lambda _progress: None),
            note=self._notes.append,
            take_note=self._take_note,
            total=0,
        )
        with loop.timed():
            ledger.recover(self.slug)
            ledger.forget_rehearsals(self.slug, self.rehearsals())
            if not (self._preflighted and is_postgres(self.conn)):
                # On PostgreSQL another sender may have finished the issue since the
                # preflight: this one then sends nothing and says so (sent 0).
                self._refuse_if_finished(ledger)
            # A first send of a big list starts with the first rows written; the others
            # are written while its requests are out.
            self.requeue(ledger, rows=CHUNK_BATCHES * backend.max_batch_size)
            # The pending rows: all this send's on SQLite; on PostgreSQL shared with any
            # other sender of the issue, so at most what this one will send.
            loop.total = ledger.counts(self.slug)[PENDING]
        requests_before = backend.requests

        def prepare(recipients: list[Recipient]) -> Callable[[], BatchResult]:
            if self.concurrency > 1:  # the body now, in this thread; the request in a worker
                concurrent = cast(ConcurrentBackend, backend)
                body = concurrent.prepare(message, recipients)
                return lambda: concurrent.send_prepared(body)
            return lambda: backend.send_batch(message, recipients)

        summary = loop.run(in_flight(prepare, self.concurrency), self.concurrency)
        summary.warnings = list(self.warnings)
        summary.skipped = ledger.skipped  # by this send's claims, not another sender's
        if summary.stopped is None:
            # Every row this send took is done: with one sender, every row pending at the
            # start (the total); with several, this one's share of them.
            done = summary.sent + summary.failed + summary.unknown + summary.skipped
            loop.report(Progress(done, done))
        summary.requests = backend.requests - requests_before
        summary.seconds = self._clock() - started
        summary.timings = {"database": loop.database, **backend.timings}
        return summary

    @property
    def concurrency(self) -> int:
        """Requests in flight at once: the setting, for a backend that can take several."""
        if not capabilities(self.backend_name).concurrent:
            return 1
        return self.settings.file.delivery.concurrency

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
