"""Reading the next batch ahead (`peek_batch`): the claim still decides who is in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.audience.store import SubscriberStore
from newsletter.db import Connection, is_postgres, open_database, transaction
from newsletter.deliver.ledger import Ledger
from tests._workspace import database_target, insert_subscribers
from tests._workspace import numbered_users as numbered

ISSUE = "2026-12-01"


@pytest.fixture
def other(conn: Connection, tmp_path: Path) -> Iterator[Connection]:
    """A second connection to the same database, as `serve` or an import would hold."""
    connection = open_database(database_target(tmp_path))
    yield connection
    connection.close()


@pytest.fixture
def ledger(conn: Connection) -> Ledger:
    insert_subscribers(conn, numbered(6))
    ledger = Ledger(conn)
    ledger.prepare(ISSUE)
    return ledger


def emails(recipients: list) -> list[str]:  # type: ignore[type-arg]
    return [r.email for r in recipients]


def test_the_claim_takes_the_recipients_it_peeked(conn: Connection, ledger: Ledger) -> None:
    first = ledger.claim_batch(ISSUE, 2)
    assert first is not None
    peeked = ledger.peek_batch(ISSUE, 2)
    assert emails(peeked) == numbered(2, start=2)
    ledger.mark_sent(first.id, "m1")  # a batch's outcome between the peek and the claim
    batch = ledger.claim_batch(ISSUE, 2)
    assert batch is not None and batch.recipients == peeked
    if not is_postgres(conn):  # taken as read, not read again
        assert batch.recipients is peeked
    assert ledger.counts(ISSUE)["sending"] == 2
    assert ledger.peek_batch(ISSUE, 10) == ledger.claim_batches(ISSUE, [10])[0].recipients


def test_someone_who_unsubscribes_after_the_peek_is_not_claimed(
    conn: Connection, other: Connection, ledger: Ledger
) -> None:
    assert emails(ledger.peek_batch(ISSUE, 3)) == numbered(3)
    SubscriberStore(other).unsubscribe("user000001@example.org", "one-click")
    batch = ledger.claim_batch(ISSUE, 3)
    assert batch is not None
    assert emails(batch.recipients) == ["user000000@example.org", "user000002@example.org"]
    assert ledger.counts(ISSUE)["skipped"] == 1


@pytest.mark.parametrize("writer", ["the same connection", "another connection"])
def test_a_change_after_the_peek_is_seen_by_the_claim(
    conn: Connection, other: Connection, ledger: Ledger, writer: str
) -> None:
    ledger.peek_batch(ISSUE, 2)
    written = conn if writer == "the same connection" else other
    with transaction(written):
        written.execute("UPDATE subscribers SET first_name = 'Ann' WHERE id = 2")
    batch = ledger.claim_batch(ISSUE, 2)
    assert batch is not None and batch.recipients[1].first_name == "Ann"


def test_rows_released_after_the_peek_are_claimed_as_without_it(
    conn: Connection, ledger: Ledger
) -> None:
    first = ledger.claim_batch(ISSUE, 2)
    assert first is not None
    assert emails(ledger.peek_batch(ISSUE, 2)) == numbered(2, start=2)
    ledger.release(first.id)  # provably not sent: pending again, ahead of the peek
    batch = ledger.claim_batch(ISSUE, 2)
    # On PostgreSQL rows put back behind a sender's cursor come once the rest are taken.
    expected = numbered(2, start=2) if is_postgres(conn) else numbered(2)
    assert batch is not None and emails(batch.recipients) == expected


def test_a_peek_of_another_size_or_issue_is_not_taken(ledger: Ledger) -> None:
    peeked = ledger.peek_batch(ISSUE, 2)
    batch = ledger.claim_batch(ISSUE, 3)
    assert batch is not None and emails(batch.recipients) == numbered(3)
    assert batch.recipients[:2] == peeked and batch.recipients is not peeked
    assert ledger.peek_batch("no-such-issue", 2) == []


def test_a_peek_that_would_skip_someone_leaves_the_choice_to_the_claim(
    conn: Connection, ledger: Ledger
) -> None:
    SubscriberStore(conn).unsubscribe("user000000@example.org", "asked")
    assert ledger.peek_batch(ISSUE, 2) == []
    assert ledger.counts(ISSUE)["skipped"] == 0  # a peek writes nothing
    batch = ledger.claim_batch(ISSUE, 2)
    assert batch is not None and emails(batch.recipients) == ["user000001@example.org"]
    assert ledger.counts(ISSUE)["skipped"] == 1
