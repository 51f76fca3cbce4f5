"""Taking an issue's recipients into the ledger a chunk at a time, so a send starts at once.

A first send of a million subscribers used to write a million ledger rows (about two
seconds) before its first request left. Now the list is fixed at the start, as before
(every subscriber active then, up to the highest id then: `prepare_until`), but its rows
are written in chunks of subscriber-id order (`prepared_through` says how far), each in its
own short transaction: the first chunk before sending, the others while requests are out
or when a claim runs out of pending rows. A process that stops half-way leaves the marks,
and the next run goes on from them; until the last chunk, the rows not yet written count as
pending. Every function here runs inside the caller's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def take_chunk(
    conn: Connection, issue_id: int, rows: int | None, *, lock: str = "", first: bool = False
) -> int | None:
    """Write the next `rows` recipients' ledger rows (None: all that are left); how many,
    or None when the issue was already fully taken. `lock` (PostgreSQL: FOR UPDATE) keeps
    two senders from taking the same chunk at once; `first`: the issue has no row yet and
    the caller holds the write lock, so nothing can conflict."""
    marks = conn.execute(
        f"SELECT prepared_through, prepare_until FROM ledger_issues WHERE id = ?{lock}",
        (issue_id,),
    ).fetchone()
    if marks is None or marks[1] is None:
        return None
    through, until = int(marks[0]), int(marks[1])
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
    row = conn.execute(
        "SELECT 1 FROM ledger_issues WHERE id = ? AND prepare_until IS NOT NULL", (issue_id,)
    ).fetchone()
    return row is not None
