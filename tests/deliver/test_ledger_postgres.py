"""The ledger with several senders on one PostgreSQL database (what SQLite never allows):
row locks that skip each other's rows, keys that tell a live sender from a gone one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from newsletter.db import Connection, PgConnection, PostgresTarget, open_database, rolled_back
from newsletter.db.target import parse_target
from newsletter.deliver import ledger as states
from newsletter.deliver.ledger import Ledger
from tests._workspace import insert_subscribers
from tests._workspace import numbered_users as numbered

ISSUE = "2026-12-01"


@pytest.fixture
def target(postgres_url: str) -> PostgresTarget:
    found = parse_target(postgres_url, workspace=Path("."), where="test")
    assert isinstance(found, PostgresTarget)
    return found


@pytest.fixture
def conns(target: PostgresTarget) -> Iterator[list[Connection]]:
    opened = [open_database(target) for _ in range(3)]
    yield opened
    for conn in opened:
        conn.close()


def test_a_write_that_holds_the_write_lock_does_not_hold_up_claims_or_marks(
    conns: list[Connection],
) -> None:
    """The web endpoint's writes take the write lock; a send's claims and marks use row
    locks only, so an unsubscribe being written never stalls a send."""
    web, sender, _ = conns
    insert_subscribers(sender, numbered(10))
    ledger = Ledger(sender)
    ledger.prepare(ISSUE)
    with rolled_back(web):  # the write lock, held
        web.execute("UPDATE subscribers SET status = 'unsubscribed' WHERE id = 1")
        batch = ledger.claim_batch(ISSUE, 4)
        assert batch is not None
        ledger.mark_sent(batch.id, None)
    assert ledger.counts(ISSUE)[states.SENT] == 4


def test_two_senders_claiming_at_once_never_take_the_same_recipient(
    conns: list[Connection],
) -> None:
    setup, first, second = conns
    insert_subscribers(setup, numbered(3000))
    assert Ledger(setup).prepare(ISSUE) == 3000
    taken: dict[int, list[str]] = {0: [], 1: []}
    start = threading.Barrier(2)

    def send(index: int, conn: Connection) -> None:
        ledger = Ledger(conn)
        start.wait()
        while (batch := ledger.claim_batch(ISSUE, 37)) is not None:
            taken[index] += [r.email for r in batch.recipients]
            ledger.mark_sent(batch.id, None)

    threads = [threading.Thread(target=send, args=(i, c)) for i, c in enumerate((first, second))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everyone = taken[0] + taken[1]
    assert len(everyone) == len(set(everyone)) == 3000
    assert taken[0] and taken[1], "both senders worked"
    assert Ledger(setup).counts(ISSUE)[states.SENT] == 3000


def test_recover_leaves_a_live_senders_batches_and_takes_a_gone_ones(
    target: PostgresTarget, conns: list[Connection]
) -> None:
    setup, _, other = conns
    insert_subscribers(setup, numbered(20))
    Ledger(setup).prepare(ISSUE)
    live = open_database(target)
    in_flight = Ledger(live).claim_batch(ISSUE, 5)
    assert in_flight is not None
    assert Ledger(other).recover(ISSUE) == 0  # its sender is waiting for the answer
    assert Ledger(other).counts(ISSUE)[states.SENDING] == 5
    assert isinstance(live, PgConnection)
    pid = live.raw.info.backend_pid
    live.close()  # the sender's session ends (as when its process is killed)
    _wait_until_gone(other, pid)
    assert Ledger(other).recover(ISSUE) == 5
    counts = Ledger(other).counts(ISSUE)
    assert (counts[states.SENDING], counts[states.UNKNOWN]) == (0, 5)


def _wait_until_gone(conn: Connection, pid: int) -> None:
    """The server ends a closed session's backend (and drops its locks) asynchronously."""
    deadline = time.monotonic() + 10
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = ?", (pid,)).fetchone():
        assert time.monotonic() < deadline, "the closed session's backend is still there"
        time.sleep(0.01)


def test_rows_put_back_behind_a_senders_place_are_still_claimed(
    conns: list[Connection],
) -> None:
    """A sender claims on from where its last claim ended (PostgreSQL); rows released
    behind it, by it or another sender, are taken once the rows ahead run out."""
    setup, first, second = conns
    insert_subscribers(setup, numbered(30))
    Ledger(setup).prepare(ISSUE)
    ahead, other = Ledger(first), Ledger(second)
    early = ahead.claim_batch(ISSUE, 10)
    theirs = other.claim_batch(ISSUE, 5)
    assert early is not None and theirs is not None
    ahead.release(early.id)
    other.release(theirs.id)
    taken: list[str] = []
    while (batch := ahead.claim_batch(ISSUE, 4)) is not None:
        taken += [r.email for r in batch.recipients]
        ahead.mark_sent(batch.id, None)
    assert sorted(taken) == numbered(30)
    assert Ledger(setup).counts(ISSUE)[states.SENT] == 30


def test_a_chunk_another_sender_is_writing_is_not_waited_for_between_requests(
    conns: list[Connection],
) -> None:
    """While requests are out, a sender writes the next chunk of the list only if no other
    sender is writing one (it tries again at its next wait); a claim that needs the rows
    waits for the chunk instead."""
    holder, sender, _ = conns
    insert_subscribers(sender, numbered(30))
    ledger = Ledger(sender)
    assert ledger.prepare(ISSUE, rows=10) == 10
    with rolled_back(holder):
        holder.execute(
            "SELECT 1 FROM ledger_issues WHERE slug = ? FOR NO KEY UPDATE", (ISSUE,)
        ).fetchone()
        started = time.monotonic()
        assert ledger.prepare_more(ISSUE, 10)  # more to write, none written now
        assert time.monotonic() - started < 5
        (written,) = sender.execute("SELECT count(*) FROM ledger").fetchone()
        assert written == 10
        batch = ledger.claim_batch(ISSUE, 10)  # the written rows need no chunk
        assert batch is not None and len(batch.recipients) == 10
    assert ledger.prepare_more(ISSUE, 10)
    (written,) = sender.execute("SELECT count(*) FROM ledger").fetchone()
    assert written == 20


def test_a_claim_never_waits_for_the_chunk_lock_while_it_holds_rows(
    conns: list[Connection], target: PostgresTarget
) -> None:
    """A claim that has taken rows and finds no more written commits them before it waits
    for the next chunk: `--new-subscribers` (waiting for the chunk lock, then inserting
    rows the claim holds) once deadlocked with it."""
    holder, newcomer, claimer = conns
    insert_subscribers(holder, numbered(1000))
    assert Ledger(holder).prepare(ISSUE, rows=10) == 10
    outcome: dict[str, object] = {}

    def run(name: str, step: Callable[[], object]) -> threading.Thread:
        def go() -> None:
            try:
                outcome[name] = step()
            except Exception as exc:  # the test reports which side lost
                outcome[name] = exc

        thread = threading.Thread(target=go)
        thread.start()
        return thread

    holder.execute("BEGIN")  # a sender writing a chunk (row locks only, as claims do)
    holder.execute("SELECT 1 FROM ledger_issues WHERE slug = ? FOR NO KEY UPDATE", (ISSUE,))
    joining = run("newcomers", lambda: Ledger(newcomer).prepare(ISSUE, newcomers=True))
    time.sleep(0.5)  # queued for the chunk lock first
    claiming = run("claim", lambda: Ledger(claimer).claim_batches(ISSUE, [10, 10]))
    time.sleep(0.5)  # has claimed the 10 rows written, and needs the next chunk
    holder.execute("ROLLBACK")
    joining.join(30)
    claiming.join(30)
    assert isinstance(outcome["newcomers"], int), outcome  # not a deadlock
    batches = outcome["claim"]
    assert isinstance(batches, list), outcome
    assert [len(batch.recipients) for batch in batches] == [10, 10]
    (written,) = holder.execute("SELECT count(*) FROM ledger").fetchone()
    assert written == 1000
