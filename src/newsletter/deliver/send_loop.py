"""The ledger loop of one send: claim a batch, hand it over, record its answer.

Up to `concurrency` batches are in flight at once (`[delivery] concurrency`); every ledger
write happens here, in the calling thread, each in its own short transaction:

- a batch is claimed (`sending`) before its request leaves, so a crash leaves at most the
  batches in flight `sending` (made `unknown` by the next run), never more; the batches
  for the slots free at one time are claimed in one transaction (one wait for the disk);
- its answer is recorded as it arrives, and progress counts recorded batches only;
- the first request goes alone: a refused key or a message SendGrid refuses costs one
  request, not `concurrency` of them; the rest follow once one batch was accepted;
- whatever stops the send (401/403, a fault no retry fixed, Ctrl-C) halts the backend's
  retries at once; the answers still in flight are waited for and recorded.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from newsletter.deliver.backends import Outcome
from newsletter.deliver.in_flight import Answer, InFlight
from newsletter.deliver.preparation import CHUNK_BATCHES
from newsletter.errors import DeliveryError, NewsletterError

if TYPE_CHECKING:
    from newsletter.deliver.backends import Backend, BatchResult
    from newsletter.deliver.ledger import Batch, Ledger, Recipient

# A connection that keeps losing answers is not worth feeding more batches into.
MAX_UNKNOWN_IN_A_ROW = 3
KEPT_ADDRESSES = 1000
GC_THRESHOLD = 20_000  # allocations between two collections of the youngest objects
_T = TypeVar("_T")


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


class SendLoop:
    """Claims, hands over and records the batches of one send of one issue."""

    def __init__(
        self,
        ledger: Ledger,
        backend: Backend,
        slug: str,
        *,
        backend_name: str,
        report: ProgressCallback,
        note: Callable[[str], None],
        take_note: Callable[[], str | None],
        total: int,
    ) -> None:
        self.ledger = ledger
        self.backend = backend
        self.slug = slug
        self.backend_name = backend_name
        self.report = report
        self.note = note
        self.take_note = take_note
        self.total = total
        self.summary = Summary(unit=backend.unit)
        self.database = 0.0  # seconds in the ledger
        self._done = 0
        self._in_a_row = 0
        self._sizes: list[int] = []  # batch sizes to claim next, after a split
        self._flying: dict[int, Batch] = {}
        self._exhausted = False
        self._preparing = True  # rows of the list may be left to write
        # Kept per batch, listed in claim order whatever order the answers came in.
        self._unknown: dict[int, list[str]] = {}
        self._failures: dict[int, list[tuple[str, str]]] = {}

    @contextmanager
    def timed(self) -> Iterator[None]:
        mark = time.perf_counter()
        try:
            yield
        finally:
            self.database += time.perf_counter() - mark

    def run(self, requests: InFlight, concurrency: int) -> Summary:
        self.report(Progress(0, self.total))
        collections = gc.get_threshold()
        # A send makes some ten short-lived objects per recipient and next to no reference
        # cycles: at the default threshold (700) the collector ran every 70 recipients
        # (0.28 s of a 200,000-recipient send). Put back when the send ends.
        gc.set_threshold(max(collections[0], GC_THRESHOLD), *collections[1:])
        try:
            while True:
                # One request alone until one batch is accepted, then `concurrency`.
                limit = concurrency if self.summary.sent else 1
                self._claim_and_submit(requests, limit)
                if not self._flying:
                    break
                if len(self._flying) == limit:
                    self._use_the_wait(requests)
                for answer in requests.next_answers():
                    self._take(answer)
        except KeyboardInterrupt:
            self._interrupted()
        finally:
            gc.set_threshold(*collections)
            requests.close()
        self.summary.unknown_addresses = _first(self._unknown, KEPT_ADDRESSES)
        self.summary.failures = _first(self._failures, KEPT_ADDRESSES)
        return self.summary

    def _claim_and_submit(self, requests: InFlight, limit: int) -> None:
        """Fill the free slots: every batch claimed in one transaction, then handed over."""
        free = limit - len(self._flying)
        if self.summary.stopped is not None or self._exhausted or free < 1:
            return
        sizes = (self._sizes + [self.backend.max_batch_size] * free)[:free]
        with self.timed():
            batches = self.ledger.claim_batches(self.slug, sizes, self.backend_name)
        del self._sizes[: len(batches)]
        self._exhausted = len(batches) < free
        self._flying.update((batch.id, batch) for batch in batches)
        for batch in batches:
            requests.submit(batch)

    def _use_the_wait(self, requests: InFlight) -> None:
        """While every slot is busy: write the next chunk of a first send's list, then
        build the next batch's request from the recipients the next claim should take, so
        a freed slot gets its batch without waiting for either."""
        if self.summary.stopped is not None or not requests.wants_ahead():
            return
        if self._preparing:
            with self.timed():
                rows = CHUNK_BATCHES * self.backend.max_batch_size
                self._preparing = self.ledger.prepare_more(self.slug, rows)
            if not requests.wants_ahead():
                return
        if self._exhausted or self._sizes:
            return
        with self.timed():
            recipients = self.ledger.peek_batch(self.slug, self.backend.max_batch_size)
        if recipients:
            requests.read_ahead(recipients)

    def _take(self, answer: Answer) -> None:
        batch = self._flying.pop(answer.batch.id)
        if answer.result is None:
            self._not_answered(batch, answer.error)
            return
        result = answer.result
        with self.timed():
            split = self._record(batch, result)
        if result.outcome == Outcome.PARTIAL:
            self._done += result.delivered
            self._stop(DeliveryError(result.error or "stopped part-way"))
            return
        if split:
            self._sizes[:0] = split
            self._exhausted = False
            return
        self._done += len(batch.recipients)
        self._in_a_row = self._in_a_row + 1 if result.outcome == Outcome.UNKNOWN else 0
        self.report(Progress(self._done, self.total, self.take_note()))
        if self._in_a_row >= MAX_UNKNOWN_IN_A_ROW:
            self._stop(
                DeliveryError(
                    f"{self._in_a_row} requests in a row lost their answer; stopped to avoid "
                    "leaving more recipients unknown",
                    fix="check the network, then run the same command again",
                )
            )

    def _not_answered(self, batch: Batch, error: Exception | None) -> None:
        if isinstance(error, NewsletterError):  # nothing of the batch went out
            with self.timed():
                self.ledger.release(batch.id)
            self._stop(error)
            return
        # A fault the backend could not place: the request may have gone out.
        name = type(error).__name__
        with self.timed():
            self.ledger.mark_unknown(batch.id, f"{name}: {error}")
        self._count_unknown(batch)
        self._stop(
            DeliveryError(
                f"the {self.backend.name} backend failed ({name}); the batch "
                "in flight may have been delivered and is recorded as unknown",
                fix=f"see `newsletter status {self.slug}`, fix the cause, then run the "
                "same command again",
            )
        )

    def _interrupted(self) -> None:
        self._halt()
        with self.timed():
            for batch in self._flying.values():
                self.ledger.mark_unknown(batch.id, "interrupted while sending")
        for batch in self._flying.values():
            self._count_unknown(batch)
        self._flying.clear()
        self.summary.stopped = DeliveryError(
            "interrupted", fix=f"run `newsletter send {self.slug}` again to send the rest"
        )

    def _stop(self, error: NewsletterError) -> None:
        """End the send: claim nothing more, and let no other batch start a retry."""
        if self.summary.stopped is None:  # the first cause is the one to tell
            self.summary.stopped = error
        self._halt()

    def _halt(self) -> None:
        halt: Callable[[], None] | None = getattr(self.backend, "halt", None)
        if halt is not None:
            halt()

    def _count_unknown(self, batch: Batch) -> None:
        self.summary.unknown += len(batch.recipients)
        self._unknown[batch.id] = [r.email for r in batch.recipients[:KEPT_ADDRESSES]]

    def _record(self, batch: Batch, result: BatchResult) -> list[int]:
        """Write the outcome; return the sizes to claim next when the batch must be split."""
        recipients: Sequence[Recipient] = batch.recipients
        count = len(recipients)
        if result.outcome == Outcome.SENT:
            self.ledger.mark_sent(batch.id, result.message_id)
            self.summary.sent += count
        elif result.outcome == Outcome.UNKNOWN:
            self.ledger.mark_unknown(batch.id, result.error or "answer lost")
            self._count_unknown(batch)
        elif result.outcome == Outcome.PARTIAL and 0 < result.delivered < count:
            self.ledger.release_from(batch.id, recipients[result.delivered].subscriber_id)
            self.ledger.mark_sent(batch.id, result.message_id)
            self.summary.sent += result.delivered
        elif result.outcome == Outcome.TOO_LARGE and count > 1:
            self.ledger.release(batch.id)
            self.note(f"request too large; splitting {count:,} recipients in two")
            return [count // 2, count - count // 2]
        else:
            error = result.error or "refused"
            self.ledger.mark_failed(batch.id, error)
            self.summary.failed += count
            self._failures[batch.id] = [(r.email, error) for r in recipients[:KEPT_ADDRESSES]]
        return []


def _first(per_batch: Mapping[int, list[_T]], limit: int) -> list[_T]:
    """The first `limit` items, batches in claim (id) order."""
    kept: list[_T] = []
    for batch_id in sorted(per_batch):
        kept.extend(per_batch[batch_id][: limit - len(kept)])
        if len(kept) >= limit:
            break
    return kept
