"""The send ledger: which recipient got which issue, in which state.

Every (issue, recipient) pair has one row. A send goes through these states::

    prepare         claim_batch         mark_sent
    -------> pending ----------> sending ---------> sent
               ^  |                  |--mark_failed--> failed
               |  |                  |--mark_unknown-> unknown   (answer lost: may be delivered)
               |  |                  |--recover------> unknown   (process died mid-request)
               |  |                  '--release------> pending   (provably not sent)
               |  '-- subscriber no longer active at claim time --> skipped
               '------------------ requeue (an explicit editor decision) ----------------'

A batch is written as `sending` before its request goes out and moved on only after the
answer, each step in its own transaction, so a crash at any point leaves rows that are
`sending` (made `unknown` by `recover`), never rows that were sent but look pending.
The same address can be in one issue's ledger only once (unique on the address key), even
if the subscriber was removed and added again.

Storage: a claimed row is `batched` and takes its state (sending, sent, failed, unknown)
from its batch, so recording a request's outcome is one row write whatever the batch size;
`release` and `requeue` put rows back to `pending`, keeping their last batch for its error.
"""

from __future__ import annotations

from collections.abc import Collection

from newsletter.db import deferred_sync, transaction, utc_now
from newsletter.deliver import preparation
from newsletter.deliver.batch import Batch, Recipient
from newsletter.deliver.ledger_claims import LedgerClaims
from newsletter.deliver.ledger_view import (
    BATCH_STATES,
    FAILED,
    PENDING,
    REQUEUEABLE,
    SENDING,
    SENT,
    SKIPPED,
    STATES,
    UNFINISHED,
    UNKNOWN,
    LedgerView,
    State,
)

# The states and the read side are the ledger's public names too.
__all__ = [
    "BATCH_STATES",
    "FAILED",
    "PENDING",
    "REQUEUEABLE",
    "SENDING",
    "SENT",
    "SKIPPED",
    "STATES",
    "UNFINISHED",
    "UNKNOWN",
    "Batch",
    "Ledger",
    "LedgerView",
    "Recipient",
    "State",
]

MAX_ERROR_CHARS = 2000
INTERRUPTED = "interrupted: the sending process stopped before the answer was recorded"


class Ledger(LedgerClaims):
    """The send log of every issue, in the workspace database.

    On SQLite, one process sends an issue at a time (callers hold the workspace send
    lock). On PostgreSQL several may, from several hosts: each claims with row locks that
    skip the others' rows, and signs its batches with a key it holds while it lives
    (`Claimer`), so `recover` takes only the batches of senders that are gone.
    """

    # -- preparing and recovering ---------------------------------------------------------

    def prepare(self, issue: str, *, newcomers: bool = False, rows: int | None = None) -> int:
        """Take the issue's recipients: every active subscriber, once; return how many.

        The recipients are taken when the issue is first prepared with anyone to send to:
        a resumed send goes on with that list, and people who subscribed since join only
        when asked (`newcomers`, `send --new-subscribers`). Rows `skipped` earlier whose
        subscriber is active again become pending too: they were never sent, so sending them
        now sends nobody twice. `rows`: write about that many of a first preparation's rows
        now, and leave the rest to `prepare_more` and the claims (`deliver.preparation`).
        """
        with transaction(self.conn):
            self.conn.execute(
                "INSERT INTO ledger_issues (slug, prepared) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (issue, utc_now()),
            )
            issue_id = self._issue_id(issue)
            assert issue_id is not None
            # A run that found nobody took no recipients yet: the next one takes them.
            taken = self._has_rows(issue_id)
            if not taken and not preparation.unfinished(self.conn, issue_id):
                preparation.start(self.conn, issue_id)
            added = 0
            if newcomers:
                if self._claimer is not None:  # a sender writing a chunk finishes it first
                    preparation.lock_marks(self.conn, issue_id)
                added = self.conn.execute(
                    "INSERT INTO ledger (issue_id, subscriber_id, email_key, state) "
                    "SELECT ?, id, email_key, 'pending' FROM subscribers "
                    "WHERE status = 'active' ORDER BY id ON CONFLICT DO NOTHING",
                    (issue_id,),
                ).rowcount
                preparation.finish(self.conn, issue_id)
            if not newcomers and rows != 0:  # before any row is locked: see claim_batches
                # A first chunk finds no row and holds the write lock: a plain insert
                # (PostgreSQL checks no conflict per row: 40% of a million rows).
                added = self._take_chunk(issue_id, rows, first=not taken) or 0
            # EXISTS, not IN (SELECT ... active): SQLite listed every active subscriber
            # first (0.12 s of a million) even when no row was skipped.
            revived = self.conn.execute(
                "UPDATE ledger SET state = 'pending' "
                "WHERE issue_id = ? AND state = 'skipped' AND EXISTS (SELECT 1 FROM "
                "subscribers AS s WHERE s.id = ledger.subscriber_id AND s.status = 'active')",
                (issue_id,),
            ).rowcount
        return added + revived

    def prepare_more(self, issue: str, rows: int) -> bool:
        """Write the next `rows` of the issue's recipients (none now if another sender is
        writing some); False once all are written."""
        issue_id = self._issue_id(issue)
        if issue_id is None:
            return False
        return self._write_chunk(issue_id, rows, if_free=True)

    def _has_rows(self, issue_id: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM ledger WHERE issue_id = ? LIMIT 1", (issue_id,))
        return row.fetchone() is not None

    def recover(self, issue: str) -> int:
        """Rows left `sending` by a process that died become `unknown`; return how many."""
        issue_id = self._issue_id(issue)
        if issue_id is None:
            return 0
        gone: list[int] = []
        try:
            with transaction(self.conn):
                return self._recover(issue_id, gone)
        finally:
            if self._claimer is not None:
                self._claimer.release(gone)

    def _recover(self, issue_id: int, gone: list[int]) -> int:
        orphaned = "b.issue_id = ? AND b.state = 'sending'"
        arguments: tuple[object, ...] = (issue_id,)
        if self._claimer is not None:
            gone += self._claimer.gone(issue_id)
            orphaned += " AND (b.claimed_by IS NULL OR b.claimed_by = ANY(?))"
            arguments += (gone,)
        (count,) = self.conn.execute(
            "SELECT count(*) FROM batches AS b JOIN ledger AS l "
            f"ON l.batch_id = b.id AND l.state = 'batched' WHERE {orphaned}",
            arguments,
        ).fetchone()
        self.conn.execute(
            f"UPDATE batches AS b SET state = 'unknown', finished = ?, error = ? WHERE {orphaned}",
            (utc_now(), INTERRUPTED, *arguments),
        )
        return int(count)

    def mark_sent(self, batch_id: int, message_id: str | None) -> None:
        """The service accepted the batch (202): its rows are `sent`."""
        self._finish(batch_id, SENT, (SENDING, UNKNOWN), message_id=message_id)

    def mark_failed(self, batch_id: int, error: str) -> None:
        """The service refused the batch (e.g. 400/413): not delivered, kept for a rerun."""
        self._finish(batch_id, FAILED, (SENDING,), error=error)

    def mark_unknown(self, batch_id: int, error: str) -> None:
        """The request may have gone out but its answer was lost: never resent by default."""
        self._finish(batch_id, UNKNOWN, (SENDING,), error=error)

    def release(self, batch_id: int) -> None:
        """The request provably did not go out: its rows are pending again."""
        self._finish(batch_id, PENDING, (SENDING,))

    def release_from(self, batch_id: int, subscriber_id: int) -> int:
        """Put the batch's rows from `subscriber_id` on back to pending (they provably did
        not go out); the batch keeps the rows before it. Returns how many were released."""
        with transaction(self.conn, concurrent=True):
            state = self.conn.execute(
                f"SELECT state FROM batches WHERE id = ?{self._row_lock}", (batch_id,)
            ).fetchone()
            if state is None or state[0] != SENDING:
                raise ValueError(f"batch {batch_id} is not sending")
            released = self.conn.execute(
                "UPDATE ledger SET state = 'pending' "
                "WHERE batch_id = ? AND state = 'batched' AND subscriber_id >= ?",
                (batch_id, subscriber_id),
            ).rowcount
            self.conn.execute(
                "UPDATE batches SET size = size - ? WHERE id = ?", (released, batch_id)
            )
        return int(released)

    def _finish(
        self,
        batch_id: int,
        state: str,
        allowed_from: tuple[str, ...],
        *,
        message_id: str | None = None,
        error: str | None = None,
    ) -> None:
        # Losing this write in a power cut is safe: the batch stays `sending` and `recover`
        # makes it `unknown`, never pending. Only the claim must reach the disk before the
        # request leaves, and its fsync also covers the marks written before it.
        changes_before = self._own_changes()
        with deferred_sync(self.conn), transaction(self.conn, concurrent=True):
            row = self.conn.execute(
                f"SELECT state FROM batches WHERE id = ?{self._row_lock}", (batch_id,)
            ).fetchone()
            if row is None:
                raise ValueError(f"no batch {batch_id} in the ledger")
            if row[0] not in allowed_from:
                raise ValueError(f"batch {batch_id} is {row[0]}; cannot mark it {state}")
            if state == PENDING:
                self.conn.execute(
                    "UPDATE ledger SET state = 'pending' WHERE batch_id = ? AND state = 'batched'",
                    (batch_id,),
                )
            self.conn.execute(
                "UPDATE batches SET state = ?, finished = ?, message_id = ?, error = ? "
                "WHERE id = ?",
                (
                    "released" if state == PENDING else state,
                    utc_now(),
                    message_id,
                    _truncate(error),
                    batch_id,
                ),
            )
        if state != PENDING:
            self._kept_peek(changes_before)

    # -- editor decisions --------------------------------------------------------------

    def requeue(self, issue: str, states: set[str]) -> int:
        """Put rows in `states` back to pending (e.g. {"unknown"} for --resend-unknown)."""
        wrong = set(states) - REQUEUEABLE
        if wrong:
            raise ValueError(f"cannot requeue rows that are {', '.join(sorted(wrong))}")
        issue_id = self._issue_id(issue)
        if issue_id is None or not states:
            return 0
        from_batches = sorted(set(states) & set(BATCH_STATES))
        placeholders = ", ".join("?" * len(from_batches))
        count = 0
        with transaction(self.conn):
            if SKIPPED in states:
                count += self.conn.execute(
                    "UPDATE ledger SET state = 'pending' WHERE issue_id = ? AND state = 'skipped'",
                    (issue_id,),
                ).rowcount
            if from_batches:
                count += self.conn.execute(
                    "UPDATE ledger SET state = 'pending' WHERE state = 'batched' AND batch_id IN "
                    f"(SELECT id FROM batches WHERE issue_id = ? AND state IN ({placeholders}))",
                    (issue_id, *from_batches),
                ).rowcount
        return count

    def forget_rehearsals(self, issue: str, backends: Collection[str]) -> int:
        """Put back to pending the rows that only a rehearsal backend (the outbox) sent.

        A rehearsal reached no reader, so a real send afterwards must reach them all.
        """
        issue_id = self._issue_id(issue)
        if issue_id is None or not backends:
            return 0
        placeholders = ", ".join("?" * len(backends))
        with transaction(self.conn):
            return int(
                self.conn.execute(
                    "UPDATE ledger SET state = 'pending' WHERE state = 'batched' AND batch_id IN "
                    "(SELECT id FROM batches WHERE issue_id = ? AND state IN "
                    f"('sent', 'unknown', 'failed') AND backend IN ({placeholders}))",
                    (issue_id, *backends),
                ).rowcount
            )

    def requeue_batches(
        self, issue: str, after_batch_id: int, through_batch_id: int | None = None
    ) -> int:
        """Put back to pending the rows of the issue's batches after `after_batch_id`, up to
        `through_batch_id` (None: the latest), that went out or may have (sent, unknown).

        For requests the service held and then cancelled (a SendGrid batch stopped before
        its send_at): nobody got them, so a later send may. Failed batches are left as they
        are (every send retries them); `sending` ones leave only through `recover`.
        """
        issue_id = self._issue_id(issue)
        if issue_id is None:
            return 0
        with transaction(self.conn):
            return int(
                self.conn.execute(
                    "UPDATE ledger SET state = 'pending' WHERE state = 'batched' AND batch_id IN "
                    "(SELECT id FROM batches WHERE issue_id = ? AND id > ? "
                    "AND id <= coalesce(?, id) AND state IN ('sent', 'unknown'))",
                    (issue_id, after_batch_id, through_batch_id),
                ).rowcount
            )


def _truncate(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_ERROR_CHARS:
        return text
    return text[: MAX_ERROR_CHARS - 1] + "…"
