"""A first send writes its list a chunk at a time: nobody missed, nobody twice, the list
fixed when the send started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.audience.store import SubscriberStore
from newsletter.db import Connection, open_database, transaction
from newsletter.deliver.ledger import Ledger
from tests._workspace import database_target, insert_subscribers
from tests._workspace import numbered_users as numbered

ISSUE = "2026-12-01"
LIST = 25


@pytest.fixture
def conn(engine: str, tmp_path: Path) -> Iterator[Connection]:
    connection = open_database(database_target(tmp_path))
    insert_subscribers(connection, numbered(LIST))
    yield connection
    connection.close()


def written(conn: Connection) -> int:
    (count,) = conn.execute("SELECT count(*) FROM ledger").fetchone()
    return int(count)


def claim_everyone(ledger: Ledger, size: int = 4) -> list[str]:
    """Claim and mark sent until nothing is pending; the addresses in claim order."""
    taken: list[str] = []
    while (batch := ledger.claim_batch(ISSUE, size)) is not None:
        taken += [r.email for r in batch.recipients]
        ledger.mark_sent(batch.id, None)
    return taken


def test_a_first_preparation_writes_a_chunk_and_counts_the_rest_as_pending(
    conn: Connection,
) -> None:
    ledger = Ledger(conn)
    assert ledger.prepare(ISSUE, rows=10) == 10
    assert written(conn) == 10
    assert ledger.counts(ISSUE)["pending"] == LIST
    assert not ledger.is_complete(ISSUE)


def test_claims_write_the_rest_as_they_need_it(conn: Connection) -> None:
    ledger = Ledger(conn)
    ledger.prepare(ISSUE, rows=10)
    assert claim_everyone(ledger) == numbered(LIST)
    assert written(conn) == LIST
    assert ledger.counts(ISSUE)["sent"] == LIST and ledger.is_complete(ISSUE)


def test_prepare_more_writes_the_next_chunk_until_none_is_left(conn: Connection) -> None:
    ledger = Ledger(conn)
    ledger.prepare(ISSUE, rows=10)
    assert ledger.prepare_more(ISSUE, 10) and written(conn) == 20
    assert ledger.prepare_more(ISSUE, 10) and written(conn) == LIST
    assert not ledger.prepare_more(ISSUE, 10)
    assert ledger.counts(ISSUE)["pending"] == LIST


def test_the_list_is_fixed_when_the_first_preparation_starts(conn: Connection) -> None:
    ledger = Ledger(conn)
    ledger.prepare(ISSUE, rows=10)
    insert_subscribers(conn, ["late@example.org"])
    assert ledger.counts(ISSUE)["pending"] == LIST
    assert claim_everyone(ledger) == numbered(LIST)
    assert ledger.prepare(ISSUE, newcomers=True) == 1  # only when asked


def test_someone_who_leaves_before_their_row_is_written_is_not_taken(conn: Connection) -> None:
    ledger = Ledger(conn)
    ledger.prepare(ISSUE, rows=10)
    SubscriberStore(conn).unsubscribe("user000020@example.org", "asked")
    assert ledger.counts(ISSUE)["pending"] == LIST - 1
    assert "user000020@example.org" not in claim_everyone(ledger)


def test_a_run_stopped_half_way_is_continued_by_the_next(conn: Connection, tmp_path: Path) -> None:
    Ledger(conn).prepare(ISSUE, rows=10)
    conn.close()  # the process is gone; its first chunk and the marks stay
    again = open_database(database_target(tmp_path))
    try:
        insert_subscribers(again, ["late@example.org"])
        ledger = Ledger(again)
        assert ledger.prepare(ISSUE) == LIST - 10  # the rest of the list fixed before
        assert written(again) == LIST
        assert claim_everyone(ledger) == numbered(LIST)
    finally:
        again.close()


def test_an_issue_is_not_complete_while_rows_are_left_to_write(conn: Connection) -> None:
    ledger = Ledger(conn)
    ledger.prepare(ISSUE, rows=10)
    batch = ledger.claim_batch(ISSUE, 10)  # exactly the rows written
    assert batch is not None and len(batch.recipients) == 10
    ledger.mark_sent(batch.id, None)
    assert ledger.was_sent(ISSUE) and not ledger.is_complete(ISSUE)
    assert ledger.counts(ISSUE)["pending"] == LIST - 10


def test_an_address_already_taken_is_passed_over_in_a_later_chunk(conn: Connection) -> None:
    ledger = Ledger(conn)
    ledger.prepare(ISSUE, rows=10)
    with transaction(conn):  # user 3's address moves on, and user 15 takes it up
        conn.execute(
            "UPDATE subscribers SET email = 'moved@example.org', email_key = 'moved@example.org' "
            "WHERE email = 'user000003@example.org'"
        )
        conn.execute(
            "UPDATE subscribers SET email = 'user000003@example.org', "
            "email_key = 'user000003@example.org' WHERE email = 'user000015@example.org'"
        )
    taken = claim_everyone(ledger)
    assert len(taken) == LIST - 1 and len(set(taken)) == LIST - 1
    assert "moved@example.org" in taken  # user 3, at the address they have now
