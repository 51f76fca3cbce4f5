"""What the ledger knows: rows per state, recipients, which issues went out and how.

The read side of `deliver.ledger`; `Ledger` adds the writes of the send protocol.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from enum import StrEnum
from typing import TYPE_CHECKING

from newsletter.deliver import preparation

if TYPE_CHECKING:
    from newsletter.db import Connection

_FETCH_CHUNK = 1000


class State(StrEnum):
    """A ledger row's state (the values stored in the database)."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    SKIPPED = "skipped"


# The short names callers use; each is the State member itself.
PENDING: str = State.PENDING
SENDING: str = State.SENDING
SENT: str = State.SENT
FAILED: str = State.FAILED
UNKNOWN: str = State.UNKNOWN
SKIPPED: str = State.SKIPPED
STATES: tuple[str, ...] = tuple(State)
# States a rerun may put back to pending; `sending` only ever leaves through `recover`.
REQUEUEABLE = frozenset({SENT, FAILED, UNKNOWN, SKIPPED})
UNFINISHED = (PENDING, SENDING, UNKNOWN, FAILED)
# The states a row takes from its batch (the row itself says `batched`).
BATCH_STATES = (SENDING, SENT, FAILED, UNKNOWN)


def _rehearsal_batch(rehearsals: Collection[str]) -> str:
    """SQL true for a batch `b` that one of the `rehearsals` backends sent (its names bound)."""
    if not rehearsals:
        return "FALSE"
    return f"b.backend IS NOT NULL AND b.backend IN ({', '.join('?' * len(rehearsals))})"


class LedgerView:
    """Reads of the send log; safe at any time, also while a send runs."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def sent_by_backend(self, issue: str) -> dict[str, int]:
        """Recipients in state `sent`, per backend that sent them ("unrecorded": before 005)."""
        rows = self.conn.execute(
            "SELECT coalesce(b.backend, 'unrecorded'), count(*) FROM batches AS b "
            "JOIN ledger_issues AS i ON i.id = b.issue_id "
            "JOIN ledger AS l ON l.batch_id = b.id AND l.state = 'batched' "
            "WHERE i.slug = ? AND b.state = 'sent' GROUP BY 1 ORDER BY 1",
            (issue,),
        ).fetchall()
        return {str(backend): int(count) for backend, count in rows}

    def went_out(self, rehearsals: Collection[str]) -> list[tuple[str, str]]:
        """(slug, first batch accepted, UTC) of every issue a real backend sent, newest first."""
        rehearsal = _rehearsal_batch(rehearsals)
        rows = self.conn.execute(
            "SELECT i.slug, min(b.finished) FROM batches AS b "
            "JOIN ledger_issues AS i ON i.id = b.issue_id "
            "WHERE b.state = 'sent' AND b.finished IS NOT NULL "
            f"AND NOT ({rehearsal}) "
            "GROUP BY i.slug ORDER BY 2 DESC, min(b.id) DESC",
            tuple(rehearsals),
        ).fetchall()
        return [(str(slug), str(first)) for slug, first in rows]

    def sent(self, issue: str, rehearsals: Collection[str] = ()) -> int:
        """Recipients a real backend sent the issue to (`counts` has every state, slower)."""
        rehearsal = _rehearsal_batch(rehearsals)
        (count,) = self.conn.execute(
            "SELECT count(*) FROM batches AS b JOIN ledger_issues AS i ON i.id = b.issue_id "
            "JOIN ledger AS l ON l.batch_id = b.id AND l.state = 'batched' "
            f"WHERE i.slug = ? AND b.state = 'sent' AND NOT ({rehearsal})",
            (issue, *rehearsals),
        ).fetchone()
        return int(count)

    def first_sent(self, issue: str, rehearsals: Collection[str] = ()) -> str | None:
        """When a real backend first had a batch of the issue accepted (UTC, ISO 8601)."""
        rehearsal = _rehearsal_batch(rehearsals)
        (first,) = self.conn.execute(
            "SELECT min(b.finished) FROM batches AS b JOIN ledger_issues AS i "
            "ON i.id = b.issue_id WHERE i.slug = ? AND b.state = 'sent' "
            f"AND NOT ({rehearsal})",
            (issue, *rehearsals),
        ).fetchone()
        return None if first is None else str(first)

    def counts(self, issue: str, rehearsals: Collection[str] = ()) -> dict[str, int]:
        """Rows per state for the issue; every state present, zeros included.

        Rows that only a `rehearsals` backend (the outbox) sent count as pending: a real
        send still has to reach them.
        """
        counts = dict.fromkeys(STATES, 0)
        issue_id = self._issue_id(issue)
        if issue_id is None:
            return counts
        rehearsal = _rehearsal_batch(rehearsals)
        rows = self.conn.execute(
            "SELECT state, count(*) FROM ledger "
            "WHERE issue_id = ? AND state IN ('pending', 'skipped') GROUP BY state "
            "UNION ALL "
            f"SELECT CASE WHEN {rehearsal} THEN 'pending' "
            "ELSE b.state END, count(*) FROM batches AS b JOIN ledger AS l "
            "ON l.batch_id = b.id AND l.state = 'batched' "
            "WHERE b.issue_id = ? GROUP BY 1",
            (issue_id, *rehearsals, issue_id),
        )
        for state, n in rows:
            counts[str(state)] += int(n)
        counts[PENDING] += preparation.untaken(self.conn, issue_id)
        return counts

    def recipients(
        self, issue: str, state: str, limit: int | None = None
    ) -> Iterator[tuple[str, str | None]]:
        """(email, last error) of the rows in `state`, streamed page by page.

        Pending and skipped rows come in subscriber-id order, the others batch by batch.
        The address is the subscriber's current one, or the stored address key if the
        subscriber has since been removed.
        """
        if state not in STATES:
            raise ValueError(f"unknown ledger state {state!r}")
        issue_id = self._issue_id(issue)
        if issue_id is None or (limit is not None and limit <= 0):
            return
        pages = (
            self._batch_rows(issue_id, state)
            if state in BATCH_STATES
            else self._unbatched_rows(issue_id, state)
        )
        given = 0
        for page in pages:
            for email, error in page:
                yield email, error
                given += 1
                if limit is not None and given >= limit:
                    return

    def _unbatched_rows(self, issue_id: int, state: str) -> Iterator[list[tuple[str, str | None]]]:
        after = -1
        while True:
            # Keyset pages: no read transaction held open while the caller works.
            rows = self.conn.execute(
                "SELECT l.subscriber_id, coalesce(s.email, l.email_key), b.error "
                "FROM ledger AS l "
                "LEFT JOIN subscribers AS s ON s.id = l.subscriber_id "
                "LEFT JOIN batches AS b ON b.id = l.batch_id "
                "WHERE l.issue_id = ? AND l.state = ? AND l.subscriber_id > ? "
                "ORDER BY l.subscriber_id LIMIT ?",
                (issue_id, state, after, _FETCH_CHUNK),
            ).fetchall()
            yield [(str(email), error) for _, email, error in rows]
            if len(rows) < _FETCH_CHUNK:
                return
            after = rows[-1][0]

    def _batch_rows(self, issue_id: int, state: str) -> Iterator[list[tuple[str, str | None]]]:
        batches = self.conn.execute(
            "SELECT id, error FROM batches WHERE issue_id = ? AND state = ? ORDER BY id",
            (issue_id, state),
        ).fetchall()
        for batch_id, error in batches:
            rows = self.conn.execute(
                "SELECT coalesce(s.email, l.email_key) FROM ledger AS l "
                "LEFT JOIN subscribers AS s ON s.id = l.subscriber_id "
                "WHERE l.batch_id = ? AND l.state = 'batched' ORDER BY l.subscriber_id",
                (batch_id,),
            ).fetchall()
            yield [(str(email), error) for (email,) in rows]

    def issues(self) -> list[str]:
        """Every issue with a ledger, in the order they were first prepared."""
        rows = self.conn.execute("SELECT slug FROM ledger_issues ORDER BY id").fetchall()
        return [str(slug) for (slug,) in rows]

    def is_prepared(self, issue: str) -> bool:
        """`prepare` has run for the issue: it has a ledger."""
        return self._issue_id(issue) is not None

    def last_batch_id(self, issue: str) -> int | None:
        """The issue's most recent batch, whatever its state; None before the first."""
        (last,) = self.conn.execute(
            "SELECT max(b.id) FROM batches AS b JOIN ledger_issues AS i ON i.id = b.issue_id "
            "WHERE i.slug = ?",
            (issue,),
        ).fetchone()
        return None if last is None else int(last)

    def is_complete(self, issue: str) -> bool:
        """Prepared, and nothing pending, sending, unknown or failed."""
        issue_id = self._issue_id(issue)
        if issue_id is None or preparation.unfinished(self.conn, issue_id):
            return False
        return not self._any(issue_id, UNFINISHED)

    def was_sent(self, issue: str) -> bool:
        """At least one recipient has this issue in state `sent`."""
        issue_id = self._issue_id(issue)
        return issue_id is not None and self._any(issue_id, (SENT,))

    def sent_issues(self, limit: int) -> list[str]:
        """Issues with at least one accepted batch, most recently sent first."""
        rows = self.conn.execute(
            "SELECT i.slug FROM batches AS b JOIN ledger_issues AS i ON i.id = b.issue_id "
            "WHERE b.state = 'sent' GROUP BY i.id ORDER BY max(b.id) DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [str(slug) for (slug,) in rows]

    # -- helpers -------------------------------------------------------------------------

    def _any(self, issue_id: int, states: tuple[str, ...]) -> bool:
        """Whether any row of the issue is in one of `states`."""
        if (
            PENDING in states
            and self.conn.execute(
                "SELECT 1 FROM ledger WHERE issue_id = ? AND state = 'pending' LIMIT 1",
                (issue_id,),
            ).fetchone()
        ):
            return True
        from_batches = [state for state in states if state in BATCH_STATES]
        if not from_batches:
            return False
        placeholders = ", ".join("?" * len(from_batches))
        row = self.conn.execute(
            f"SELECT 1 FROM batches AS b WHERE b.issue_id = ? AND b.state IN ({placeholders}) "
            "AND EXISTS (SELECT 1 FROM ledger WHERE batch_id = b.id AND state = 'batched') "
            "LIMIT 1",
            (issue_id, *from_batches),
        ).fetchone()
        return row is not None

    def _issue_id(self, issue: str) -> int | None:
        # Not cached: a caller may roll back the transaction that created the issue row.
        row = self.conn.execute("SELECT id FROM ledger_issues WHERE slug = ?", (issue,)).fetchone()
        return None if row is None else int(row[0])
