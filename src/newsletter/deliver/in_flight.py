"""Batches in flight: their requests run in worker threads, their answers come back to
the one thread that writes the ledger.

The sender claims a batch (one short transaction) before handing it over and records the
answer after taking it back, so the ledger is written from one thread only and never holds
more batches `sending` than there are requests in flight. The request body is built in the
calling thread too (`Prepare`): the workers only wait on sockets, so they seldom hold the
interpreter lock that the ledger's thread needs back after every SQLite call. While every
request is out, the calling thread may build the next body ahead (`read_ahead`) from the
recipients the next claim should take; the claim still decides, and the body is used only
for exactly those recipients. With one request in flight the batch is sent in the calling
thread, exactly as a sequential send does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from newsletter.deliver.backends import BatchResult
    from newsletter.deliver.batch import Batch, Recipient

# Run in the calling thread with a batch's recipients; returns the request to run.
Prepare = Callable[[list["Recipient"]], Callable[[], "BatchResult"]]


@dataclass(frozen=True)
class Answer:
    """What became of one batch: the backend's result, or what it raised."""

    batch: Batch
    result: BatchResult | None = None
    error: Exception | None = None


class InFlight(Protocol):
    def submit(self, batch: Batch) -> None:
        """Start the batch's request; its answer comes from `next_answer`."""
        ...

    def next_answers(self) -> list[Answer]:
        """The next answer to arrive, waiting for it, and any others already there; only
        while a batch is in flight."""
        ...

    def wants_ahead(self) -> bool:
        """Whether building a request ahead would use time otherwise spent waiting: no
        body is held yet and no answer is waiting to be taken."""
        ...

    def read_ahead(self, recipients: list[Recipient]) -> None:
        """Build the request for these recipients now; `submit` uses it for a batch of
        exactly these recipients, and drops it otherwise."""
        ...

    def close(self) -> None: ...


def in_flight(prepare: Prepare, concurrency: int) -> InFlight:
    """One request at a time in this thread, or up to `concurrency` in worker threads."""
    return Sequential(prepare) if concurrency <= 1 else Concurrent(prepare, concurrency)


def _answer(batch: Batch, request: Callable[[], BatchResult]) -> Answer:
    try:
        return Answer(batch, result=request())
    except Exception as exc:  # the sender sorts it: not sent, or may have gone out
        return Answer(batch, error=exc)


class Sequential:
    """The request runs in the calling thread, inside `submit`."""

    def __init__(self, prepare: Prepare) -> None:
        self._prepare = prepare
        self._answers: list[Answer] = []

    def submit(self, batch: Batch) -> None:
        self._answers.append(_answer(batch, lambda: self._prepare(batch.recipients)()))

    def next_answers(self) -> list[Answer]:
        answers, self._answers = self._answers, []
        return answers

    def wants_ahead(self) -> bool:
        return False  # the request runs inside `submit`: there is no waiting to fill

    def read_ahead(self, recipients: list[Recipient]) -> None:
        pass

    def close(self) -> None:
        self._answers.clear()


class Concurrent:
    """Worker threads, each taking one batch at a time; answers in the order they arrive.

    The threads are daemons: after Ctrl-C the sender records the batches in flight as
    unknown and exits without waiting for their answers.
    """

    def __init__(self, prepare: Prepare, workers: int) -> None:
        self._prepare = prepare
        self._requests: queue.SimpleQueue[tuple[Batch, Callable[[], BatchResult]] | None] = (
            queue.SimpleQueue()
        )
        self._answers: queue.SimpleQueue[Answer] = queue.SimpleQueue()
        self._ahead: tuple[list[Recipient], Callable[[], BatchResult]] | None = None
        self._threads = [
            threading.Thread(target=self._work, name=f"send-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (job := self._requests.get()) is not None:
            self._answers.put(_answer(*job))

    def submit(self, batch: Batch) -> None:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == batch.recipients:
            self._requests.put((batch, ahead[1]))
            return
        try:
            request = self._prepare(batch.recipients)
        except Exception as exc:
            self._answers.put(Answer(batch, error=exc))
            return
        self._requests.put((batch, request))

    def wants_ahead(self) -> bool:
        return self._ahead is None and self._answers.empty()

    def read_ahead(self, recipients: list[Recipient]) -> None:
        try:
            self._ahead = (recipients, self._prepare(recipients))
        except Exception:  # the claim builds it again and reports what failed
            self._ahead = None

    def next_answers(self) -> list[Answer]:
        # A timeout keeps the wait interruptible by Ctrl-C on every platform.
        while True:
            try:
                answers = [self._answers.get(timeout=0.5)]
                break
            except queue.Empty:
                continue
        while True:
            try:
                answers.append(self._answers.get_nowait())
            except queue.Empty:
                return answers

    def close(self) -> None:
        for _ in self._threads:
            self._requests.put(None)
