"""Taking an issue's recipients into the ledger a chunk at a time, so a send starts at once.

A first send of a million subscribers used to write a million ledger rows (about two
seconds) before its first request left. Now the list is bounded at the start (subscribers
up to the highest id then: `prepare_until`; who subscribes later joins only with
`--new-subscribers`) and its rows are written in chunks of subscriber-id order
(`prepared_through` says how far), each in its own short transaction: the first chunk
before sending, the others while requests are out or when a claim runs out of pending rows.
A subscriber is taken if active when their chunk is written (seconds after the start, on
a big list); as before, whoever is no longer active when their batch is claimed is skipped.
A process that stops half-way leaves the marks and the next run goes on from them; until
the last chunk, the active subscribers not written yet count as pending. A rehearsal writes
no chunk: it reads them (`untaken_batches`), so it holds no lock a sender waits for.
Every function here runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from newsletter.deliver.batch import Recipient, recipients_of

if TYPE_CHECKING:
    from newsletter.db import Connection

# Rows written at a time, in batches of the backend (10,000 for SendGrid's 1,000).
CHUNK_BATCHES = 10


def start(conn: Connection, issue_id: int) -> None:
    """Fix the issue's list: the subscribers active from now on up to the highest id now."""
    conn.execute(
        "UPDATE ledger_issues SET prepared_through = 0, "
        "prepare_until = (SELECT max(id) FROM subscribers) WHERE id = ?",
        (issue_id,),
    )


def finish(conn: Connection, issue_id: int) -> None:
    """Nothing left to take (every active subscriber was taken another way)."""
    conn.execute(
        "UPDATE ledger_issues SET prepared_through = NULL, prepare_until = NULL WHERE id = ?",
        (issue_id,),
    )


# PostgreSQL: the issue's row is locked while a chunk is written, so two senders never
# write the same chunk. NO KEY UPDATE: inserting a batch or a ledger row takes a KEY SHARE
# lock on the issue's row (the foreign key), which this does not block.
WAIT = " FOR NO KEY UPDATE"
# For a chunk written while requests are out: if another sender is writing one, this one
# writes none now (it tries again at its next wait) instead of waiting for it.
IF_FREE = " FOR NO KEY UPDATE SKIP LOCKED"


def take_chunk(
    conn: Connection, issue_id: int, rows: int | None, *, lock: str = "", first: bool = False
) -> int | None:
    """Write the next `rows` recipients' ledger rows (None: all that are left); how many
    (0 also when `lock` is IF_FREE and another sender holds it), or None when the issue's
    rows are all written. `first`: the issue has no row yet and the caller holds the write
    lock, so nothing can conflict."""
    marks = _marks(conn, issue_id, "")
    if marks is not None and lock:
        marks = _marks(conn, issue_id, lock)  # read again, as the lock holder left them
        if marks is None and lock == IF_FREE:
            return 0
    if marks is None:
        return None
    through, until = marks
    boundary = None
    if rows is not None:
        boundary = conn.execute(
            "SELECT id FROM subscribers WHERE status = 'active' AND id > ? AND id <= ? "
            "ORDER BY id LIMIT 1 OFFSET ?",
            (through, until, max(rows, 1) - 1),
        ).fetchone()
    end = until if boundary is None else int(boundary[0])
    # An address can be in an issue's ledger once only: a subscriber who took the address
    # of someone already taken (an email change meanwhile) is passed over. The first chunk
    # of an issue cannot conflict, and a plain insert skips PostgreSQL's per-row check.
    upsert = "" if first else " ON CONFLICT DO NOTHING"
    added = conn.execute(
        "INSERT INTO ledger (issue_id, subscriber_id, email_key, state) "
        "SELECT ?, id, email_key, 'pending' FROM subscribers "
        f"WHERE status = 'active' AND id > ? AND id <= ? ORDER BY id{upsert}",
        (issue_id, through, end),
    ).rowcount
    if end >= until:
        finish(conn, issue_id)
    else:
        conn.execute("UPDATE ledger_issues SET prepared_through = ? WHERE id = ?", (end, issue_id))
    return int(added)


def lock_marks(conn: Connection, issue_id: int) -> None:
    """Wait for a sender writing a chunk, and keep the others from starting one (until the
    caller's transaction ends): before writing the issue's rows another way."""
    _marks(conn, issue_id, WAIT)


def _marks(conn: Connection, issue_id: int, lock: str) -> tuple[int, int] | None:
    """(prepared through, prepare until) while rows are left to write, else None."""
    row = conn.execute(
        f"SELECT prepared_through, prepare_until FROM ledger_issues WHERE id = ?{lock}",
        (issue_id,),
    ).fetchone()
    if row is None or row[1] is None:
        return None
    return int(row[0]), int(row[1])


def untaken_batches(conn: Connection, issue_id: int, size: int) -> Iterator[list[Recipient]]:
    """The recipients whose rows are still to be written, `size` at a time in subscriber-id
    order; reads only (a rehearsal: nothing written, no lock held)."""
    marks = _marks(conn, issue_id, "")
    if marks is None:
        return
    after, until = marks
    while True:
        rows = conn.execute(
            "SELECT id, 0, email, name, first_name, fields, 0 FROM subscribers "
            "WHERE status = 'active' AND id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after, until, size),
        ).fetchall()
        if not rows:
            return
        after = int(rows[-1][0])
        yield recipients_of([tuple(row) for row in rows])


def untaken(conn: Connection, issue_id: int) -> int:
    """Recipients of the issue whose rows are still to be written (they count as pending)."""
    row = conn.execute(
        "SELECT count(*) FROM ledger_issues AS i JOIN subscribers AS s "
        "ON s.status = 'active' AND s.id > i.prepared_through AND s.id <= i.prepare_until "
        "WHERE i.id = ?",
        (issue_id,),
    ).fetchone()
    return int(row[0]) if row else 0


def unfinished(conn: Connection, issue_id: int) -> bool:
    """Whether some of the issue's recipients are still to be taken."""
    return _marks(conn, issue_id, "") is not None
