"""The claim side of the send ledger: taking pending rows as `sending` batches.

A claim reads the next pending rows in subscriber-id order and writes them, in one short
transaction, as a batch. `peek_batch` reads what the next claim would take without writing,
so the sender can build that batch's request while its other requests are out; on SQLite
the claim then takes the rows it peeked without reading them again, when nothing was
written since: no other connection committed (`PRAGMA data_version`) and this one wrote
nothing but the outcomes of batches (`total_changes`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from newsletter.db import Connection, PgConnection, transaction, utc_now
from newsletter.deliver import preparation
from newsletter.deliver.batch import Batch, PendingRow, Recipient, recipients_of
from newsletter.deliver.claimer import Claimer
from newsletter.deliver.ledger_view import LedgerView
from newsletter.deliver.preparation import CHUNK_BATCHES

# A claimed batch: its id, attempt, rows, and recipients when taken from a peek.
_Claimed = tuple[int, int, list[PendingRow], list[Recipient] | None]


@dataclass
class _Peek:
    """The rows a peek read, and how to tell that nothing was written since (SQLite)."""

    issue_id: int
    size: int
    rows: list[PendingRow]
    recipients: list[Recipient]
    version: int  # PRAGMA data_version: moves when another connection commits
    changes: int  # the connection's total_changes: moves with its own writes


class LedgerClaims(LedgerView):
    """Claims of pending rows; `Ledger` adds the rest of the send protocol."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._claimer = Claimer(conn) if isinstance(conn, PgConnection) else None
        # PostgreSQL: where this sender's last claim ended, per issue. A claimed row's old
        # version stays in the claim index until vacuum, so scanning from the start walked
        # past every row claimed so far (the claims slowed as the send went on).
        self._cursor: dict[int, int] = {}
        # Rows this ledger's claims made `skipped` (committed): with several senders on one
        # issue, the skipped count of the issue also holds the others'.
        self.skipped = 0
        # SQLite: the last peek, while the claim may still take its rows as read.
        self._peek: _Peek | None = None
        # A rehearsal (rolled back) writes no chunk of a list: it reads the rest instead
        # (`untaken_batches`), so it holds no lock another sender waits for.
        self.takes_chunks = True

    @property
    def _row_lock(self) -> str:
        """Lock the row read, where other senders may change it (PostgreSQL)."""
        return " FOR UPDATE" if self._claimer is not None else ""

    # -- one batch through its states ------------------------------------------------------

    def claim_batch(self, issue: str, size: int, backend: str | None = None) -> Batch | None:
        """Take up to `size` pending rows (subscriber-id order) as one `sending` batch.

        Pending rows whose subscriber is no longer active (or was removed) become `skipped`
        on the way. None when nothing is pending.
        """
        batches = self.claim_batches(issue, [size], backend)
        return batches[0] if batches else None

    def claim_batches(
        self, issue: str, sizes: Sequence[int], backend: str | None = None
    ) -> list[Batch]:
        """`claim_batch` for several batches in one transaction (one wait for the disk;
        more when the next rows of a first send's list must be written on the way), each
        of the given size, in order; fewer (or none) when the pending rows run out."""
        if any(size < 1 for size in sizes):
            raise ValueError(f"batch size must be at least 1, not {min(sizes)}")
        issue_id = self._issue_id(issue)
        if issue_id is None:
            return []
        claimed: list[_Claimed] = []
        skipped = [0]
        peek, self._peek = self._peek, None
        # When the written rows run out while the list has rows left to write, what is
        # claimed is committed first and the next chunk written in a transaction of its
        # own: on PostgreSQL a claim holding row locks must never wait for the chunk lock
        # (a chunk's or --new-subscribers' insert may be waiting for those rows).
        while self._claim_into(claimed, issue, issue_id, sizes, backend, skipped, peek):
            peek = None
            self._write_chunk(issue_id, CHUNK_BATCHES * sizes[len(claimed)])
        self.skipped += skipped[0]
        return [
            Batch(batch_id, issue, recipients or recipients_of(rows), attempt)
            for batch_id, attempt, rows, recipients in claimed
        ]

    def _claim_into(
        self,
        claimed: list[_Claimed],
        issue: str,
        issue_id: int,
        sizes: Sequence[int],
        backend: str | None,
        skipped: list[int],
        peek: _Peek | None,
    ) -> bool:
        """Claim the batches of `sizes` not claimed yet, in one transaction; True when the
        written rows ran out with some of the list still to write."""
        with transaction(self.conn, concurrent=True):
            for size in sizes[len(claimed) :]:
                peeked = self._unchanged(peek, issue_id, size) if not claimed else None
                rows = peeked.rows if peeked else self._take_active_pending(issue_id, size, skipped)
                if rows is None:
                    return True
                if not rows:
                    return False
                attempt = max(row[1] for row in rows) + 1
                batch_id = self._insert_batch(issue, issue_id, rows, attempt, backend)
                claimed.append((batch_id, attempt, rows, peeked.recipients if peeked else None))
        return False

    def _unchanged(self, peek: _Peek | None, issue_id: int, size: int) -> _Peek | None:
        """The peek, if its rows are still exactly what this claim would read (SQLite)."""
        if peek is None or peek.issue_id != issue_id or peek.size != size:
            return None
        if _stamp(self.conn) != (peek.version, peek.changes):
            return None
        return peek

    def _own_changes(self) -> int:
        return _changes(self.conn)

    def _kept_peek(self, changes_before: int) -> None:
        """After a write that changed no ledger row (a batch's outcome): the peek stays
        good if nothing else was written since it, the write itself aside."""
        if self._peek is not None and self._peek.changes == changes_before:
            self._peek.changes = _changes(self.conn)

    def _insert_batch(
        self,
        issue: str,
        issue_id: int,
        rows: list[PendingRow],
        attempt: int,
        backend: str | None,
    ) -> int:
        claimer = self._claimer.key if self._claimer is not None else None
        (batch_id,) = self.conn.execute(
            "INSERT INTO batches (issue_id, state, attempt, size, created, backend, claimed_by) "
            "VALUES (?, 'sending', ?, ?, ?, ?, ?) RETURNING id",
            (issue_id, attempt, len(rows), utc_now(), backend, claimer),
        ).fetchone()
        if self._claimer is not None:
            # The rows this transaction locked; another sender's locked rows may lie
            # between them, so no range.
            updated = self.conn.execute(
                "UPDATE ledger SET state = 'batched', batch_id = ?, attempts = attempts + 1 "
                "WHERE id = ANY(?)",
                (batch_id, [row[6] for row in rows]),
            ).rowcount
        else:
            # One range update through the index instead of a statement per row: with one
            # writer, the rows taken are exactly the pending ones up to the last one taken.
            updated = self.conn.execute(
                "UPDATE ledger SET state = 'batched', batch_id = ?, attempts = attempts + 1 "
                "WHERE issue_id = ? AND state = 'pending' AND subscriber_id <= ?",
                (batch_id, issue_id, rows[-1][0]),
            ).rowcount
        if updated != len(rows):
            raise RuntimeError(
                f"ledger of {issue!r} changed while claiming ({updated} != {len(rows)})"
            )
        return int(batch_id)

    def _take_active_pending(
        self, issue_id: int, size: int, skipped: list[int]
    ) -> list[PendingRow] | None:
        """The next active pending rows, the inactive ones on the way made skipped; empty
        when none is left, None when none is written but the list has rows to write."""
        # PostgreSQL: lock the rows taken, passing over rows another sender has locked.
        lock = " FOR UPDATE OF l SKIP LOCKED" if self._claimer is not None else ""
        while True:
            rows = self._pending_after(issue_id, size, lock, self._cursor.get(issue_id, 0))
            if not rows and self._cursor.get(issue_id, 0):
                # Rows put back behind the cursor (released, requeued, revived) come last.
                self._cursor[issue_id] = 0
                rows = self._pending_after(issue_id, size, lock, 0)
            if not rows:
                if self.takes_chunks and preparation.unfinished(self.conn, issue_id):
                    return None
                return []
            if self._claimer is not None:
                self._cursor[issue_id] = rows[-1][1]
            inactive = [(row[0],) for row in rows if row[7] != "active"]
            if inactive:
                self.conn.executemany("UPDATE ledger SET state = 'skipped' WHERE id = ?", inactive)
                skipped[0] += len(inactive)
            active = [(*row[1:7], row[0]) for row in rows if row[7] == "active"]
            if active:
                return active

    @property
    def _issue_lock(self) -> str:
        return preparation.WAIT if self._claimer is not None else ""

    def _take_chunk(
        self, issue_id: int, rows: int | None, *, if_free: bool = False, first: bool = False
    ) -> int | None:
        """The next `rows` of the issue's recipients (see `deliver.preparation`), in the
        caller's transaction; on PostgreSQL the issue's row lock keeps two senders from
        writing the same chunk (`if_free`: none now if another sender is writing one)."""
        if not self.takes_chunks:
            return None
        lock = self._issue_lock
        if lock and if_free:
            lock = preparation.IF_FREE
        return preparation.take_chunk(self.conn, issue_id, rows, lock=lock, first=first)

    def _write_chunk(self, issue_id: int, rows: int, *, if_free: bool = False) -> bool:
        """`_take_chunk` in a transaction of its own; False once the list is all written."""
        with transaction(self.conn, concurrent=True):
            return self._take_chunk(issue_id, rows, if_free=if_free) is not None

    def untaken_batches(self, issue: str, size: int) -> Iterator[list[Recipient]]:
        """The recipients of the issue's list whose rows are not written yet, `size` at a
        time; reads only."""
        issue_id = self._issue_id(issue)
        if issue_id is None:
            return iter(())
        return preparation.untaken_batches(self.conn, issue_id, size)

    def peek_batch(self, issue: str, size: int) -> list[Recipient]:
        """The recipients the next `claim_batch` of `size` would take if nothing changed
        meanwhile; reads only. Empty when that claim would skip someone (or nothing is
        pending): the claim decides then. A claim's recipients are always its own rows;
        this lets the sender build a request ahead and use it only if they are the same.
        """
        self._peek = None
        issue_id = self._issue_id(issue)
        if issue_id is None or size < 1:
            return []
        stamp = _stamp(self.conn) if self._claimer is None else None
        rows = self._pending_after(issue_id, size, "", self._cursor.get(issue_id, 0))
        if not rows or any(row[7] != "active" for row in rows):
            return []
        pending: list[PendingRow] = [(*row[1:7], row[0]) for row in rows]
        recipients = recipients_of(pending)
        if stamp is not None:
            self._peek = _Peek(issue_id, size, pending, recipients, *stamp)
        return recipients

    def _pending_after(
        self, issue_id: int, size: int, lock: str, after: int
    ) -> list[tuple[Any, ...]]:
        return list(
            self.conn.execute(
                "SELECT l.id, l.subscriber_id, l.attempts, s.email, s.name, s.first_name, "
                "s.fields, s.status FROM ledger AS l "
                # s.id > ? too: PostgreSQL merges the two in id order, and without it
                # walked the subscribers from the first one on every claim.
                "LEFT JOIN subscribers AS s ON s.id = l.subscriber_id AND s.id > ? "
                "WHERE l.issue_id = ? AND l.state = 'pending' AND l.subscriber_id > ? "
                f"ORDER BY l.subscriber_id LIMIT ?{lock}",
                (after, issue_id, after, size),
            ).fetchall()
        )


def _stamp(conn: Connection) -> tuple[int, int]:
    """What moves when anything is written to a SQLite database: (another connection's
    commits, this connection's writes)."""
    (version,) = conn.execute("PRAGMA data_version").fetchone()
    return int(version), _changes(conn)


def _changes(conn: Connection) -> int:
    return conn.total_changes if isinstance(conn, sqlite3.Connection) else 0
