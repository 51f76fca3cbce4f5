"""The send ledger on real SQLite files: states, batches, recovery after a SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from newsletter.audience.store import SubscriberStore
from newsletter.db import (
    Connection,
    applied_migrations,
    engine_errors,
    is_postgres,
    open_database,
    transaction,
)
from newsletter.deliver import ledger as states
from newsletter.deliver.ledger import Ledger
from newsletter.errors import LockBusy, UserError
from newsletter.migrations import MIGRATIONS
from tests._workspace import database_target, insert_subscribers, wait_for_other_sessions
from tests._workspace import numbered_users as numbered

ISSUE = "2026-12-01"


@pytest.fixture
def ledger(conn: Connection) -> Ledger:
    return Ledger(conn)


def counts(ledger: Ledger, issue: str = ISSUE, **expected: int) -> None:
    assert ledger.counts(issue) == {state: expected.get(state, 0) for state in states.STATES}


# -- the database ---------------------------------------------------------------------


def test_open_applies_the_migrations_once(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    conn = open_database(path)
    assert applied_migrations(conn) == [name for name, _ in MIGRATIONS]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA foreign_keys").fetchone() == (1,)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (30_000,)
    conn.close()
    again = open_database(path)
    assert applied_migrations(again) == [name for name, _ in MIGRATIONS]
    assert again.execute("SELECT count(*) FROM _migrations").fetchone() == (len(MIGRATIONS),)
    columns = [row[1] for row in again.execute("PRAGMA table_info(schedules)")]
    assert columns == ["issue", "send_at_utc", "tz", "created"]


def test_a_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "newsletter.db")
    conn.execute("INSERT INTO _migrations VALUES ('999_future', 'now')")
    conn.close()
    with pytest.raises(UserError) as error:
        open_database(tmp_path / "newsletter.db")
    assert error.value.line() == (
        "the database was updated by a newer version of newsletter (migration 999_future) "
        "— upgrade newsletter (pip install -U newsletter)"
    )


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    path.write_text("subscribers, please\n" * 100)
    with pytest.raises(UserError) as error:
        open_database(path)
    assert error.value.line() == (
        f"{path}: cannot use the database (file is not a database) — check that the file "
        "is the workspace's SQLite database (setting [delivery] database in newsletter.toml)"
    )


def test_transaction_rolls_back_and_nests(conn: Connection) -> None:
    with pytest.raises(RuntimeError), transaction(conn):
        insert_subscribers(conn, ["ann@example.org"])  # nested: a savepoint
        raise RuntimeError("crash")
    assert conn.execute("SELECT count(*) FROM subscribers").fetchone() == (0,)
    with transaction(conn):
        insert_subscribers(conn, ["ann@example.org"])
        with pytest.raises(engine_errors()):  # the address is unique
            insert_subscribers(conn, ["bob@example.org", "ann@example.org"])
    assert [e for (e,) in conn.execute("SELECT email FROM subscribers")] == ["ann@example.org"]
    assert not conn.in_transaction


def test_a_second_writer_waits_instead_of_failing(tmp_path: Path) -> None:
    """Two cron runs at once: the busy timeout makes the second wait for the first."""
    path = tmp_path / "newsletter.db"
    second = open_database(path)
    locked, done = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        first = open_database(path)
        with transaction(first):
            insert_subscribers(first, ["ann@example.org"])
            locked.set()
            time.sleep(0.3)
            done.set()
        first.close()

    thread = threading.Thread(target=hold_the_lock)
    thread.start()
    assert locked.wait(5)
    insert_subscribers(second, ["bob@example.org"])  # blocks until `first` commits
    assert done.is_set()
    thread.join()
    assert second.execute("SELECT count(*) FROM subscribers").fetchone() == (2,)


def test_a_writer_that_waits_too_long_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "newsletter.db"
    first, second = open_database(path), open_database(path)
    second.execute("PRAGMA busy_timeout = 100")
    with transaction(first), pytest.raises(LockBusy) as error, transaction(second):
        pass
    assert error.value.exit_code == 5
    assert error.value.line() == (
        f"{path}: the database stayed busy for 0.1 s (another newsletter run is writing to it) "
        "— let that run finish, then run the command again"
    )


def test_the_database_is_private_to_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "newsletter.db"
    open_database(path).close()
    assert path.stat().st_mode & 0o777 == 0o600


# -- prepare ----------------------------------------------------------------------------


def test_prepare_adds_active_subscribers_once(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(5))
    insert_subscribers(conn, numbered(2, start=5), status="unsubscribed")
    assert ledger.prepare(ISSUE) == 5
    assert ledger.prepare(ISSUE) == 0
    insert_subscribers(conn, numbered(1, start=7))
    assert ledger.prepare(ISSUE) == 0  # the recipients were taken at the first prepare
    assert ledger.prepare(ISSUE, newcomers=True) == 1
    counts(ledger, pending=6)
    assert ledger.issues() == [ISSUE]
    counts(ledger, "never-prepared")
    assert ledger.claim_batch("never-prepared", 10) is None


def test_an_address_removed_and_added_again_gets_the_issue_once(
    conn: Connection, ledger: Ledger
) -> None:
    store = SubscriberStore(conn)
    store.add("ann@example.org")
    ledger.prepare(ISSUE)
    batch = ledger.claim_batch(ISSUE, 10)
    assert batch is not None
    ledger.mark_sent(batch.id, "msg-1")
    store.remove("ann@example.org")
    store.add("ANN@example.org")
    assert ledger.prepare(ISSUE) == 0
    assert ledger.claim_batch(ISSUE, 10) is None
    assert list(ledger.recipients(ISSUE, states.SENT)) == [("ann@example.org", None)]


# -- batches ----------------------------------------------------------------------------


def test_claim_takes_pending_rows_in_subscriber_order(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(5))
    conn.execute(
        "UPDATE subscribers SET first_name = 'Ann', fields = '{\"city\": \"Tirana\"}' WHERE id = 1"
    )
    ledger.prepare(ISSUE)
    first = ledger.claim_batch(ISSUE, 2)
    second = ledger.claim_batch(ISSUE, 2)
    assert first is not None and second is not None
    assert (first.issue, first.attempt) == (ISSUE, 1)
    assert [r.email for r in first.recipients] == numbered(2)
    assert [r.subscriber_id for r in second.recipients] == [3, 4]
    ann = first.recipients[0]
    assert (ann.name, ann.first_name, ann.fields) == (
        "Name of user000000",
        "Ann",
        {"city": "Tirana"},
    )
    counts(ledger, pending=1, sending=4)
    with pytest.raises(ValueError):
        ledger.claim_batch(ISSUE, 0)


def test_each_outcome_of_a_batch(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(8))
    ledger.prepare(ISSUE)
    sent, failed, unknown, released = (ledger.claim_batch(ISSUE, 2) for _ in range(4))
    assert sent and failed and unknown and released
    ledger.mark_sent(sent.id, "X-Message-Id-1")
    ledger.mark_failed(failed.id, "400 Bad Request: " + "x" * 5000)
    ledger.mark_unknown(unknown.id, "read timeout after the request was sent")
    ledger.release(released.id)
    counts(ledger, sent=2, failed=2, unknown=2, pending=2)
    # Durable commits again after the marks (the claims must reach the disk).
    durable = "SHOW synchronous_commit" if is_postgres(conn) else "PRAGMA synchronous"
    assert conn.execute(durable).fetchone() in {("on",), (2,)}
    (email, error), _ = ledger.recipients(ISSUE, states.FAILED)
    assert email == "user000002@example.org"
    assert error is not None and len(error) == 2000 and error.endswith("…")
    assert list(ledger.recipients(ISSUE, states.UNKNOWN)) == [
        ("user000004@example.org", "read timeout after the request was sent"),
        ("user000005@example.org", "read timeout after the request was sent"),
    ]
    assert conn.execute("SELECT message_id FROM batches WHERE id = ?", (sent.id,)).fetchone() == (
        "X-Message-Id-1",
    )
    again = ledger.claim_batch(ISSUE, 10)
    assert again is not None and again.attempt == 2
    assert [r.email for r in again.recipients] == numbered(2, start=6)


def test_a_batch_moves_on_only_from_sending(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(2))
    ledger.prepare(ISSUE)
    batch = ledger.claim_batch(ISSUE, 10)
    assert batch is not None
    ledger.mark_failed(batch.id, "400")
    with pytest.raises(ValueError, match=f"batch {batch.id} is failed; cannot mark it sent"):
        ledger.mark_sent(batch.id, "late")
    with pytest.raises(ValueError, match="no batch 999"):
        ledger.release(999)
    counts(ledger, failed=2)


def test_inactive_subscribers_are_skipped_at_claim_time(conn: Connection, ledger: Ledger) -> None:
    store = SubscriberStore(conn)
    insert_subscribers(conn, numbered(6))
    ledger.prepare(ISSUE)
    store.unsubscribe("user000000@example.org", "asked")
    store.set_status("user000001@example.org", "bounced", "550")
    store.remove("user000003@example.org")
    batch = ledger.claim_batch(ISSUE, 2)
    assert batch is not None
    assert [r.email for r in batch.recipients] == ["user000002@example.org"]
    counts(ledger, skipped=3, sending=1, pending=2)
    assert list(ledger.recipients(ISSUE, states.SKIPPED)) == [
        ("user000000@example.org", None),
        ("user000001@example.org", None),
        ("user000003@example.org", None),  # removed: the stored address key
    ]
    store.set_status("user000000@example.org", "active", "came back")
    assert ledger.prepare(ISSUE) == 1
    counts(ledger, skipped=2, sending=1, pending=3)


def test_a_batch_of_only_inactive_rows_moves_on_to_the_next(
    conn: Connection, ledger: Ledger
) -> None:
    insert_subscribers(conn, numbered(5))
    ledger.prepare(ISSUE)
    SubscriberStore(conn).apply_suppressions(numbered(3), "complained")
    batch = ledger.claim_batch(ISSUE, 3)
    assert batch is not None
    assert [r.email for r in batch.recipients] == numbered(2, start=3)
    counts(ledger, skipped=3, sending=2)


def test_recover_turns_sending_into_unknown(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(4))
    ledger.prepare(ISSUE)
    first = ledger.claim_batch(ISSUE, 2)
    assert first is not None
    ledger.mark_sent(first.id, None)
    ledger.claim_batch(ISSUE, 2)
    assert ledger.recover(ISSUE) == 2
    assert ledger.recover(ISSUE) == 0
    counts(ledger, sent=2, unknown=2)
    assert {error for _, error in ledger.recipients(ISSUE, states.UNKNOWN)} == {states.INTERRUPTED}
    assert ledger.claim_batch(ISSUE, 10) is None  # unknown is never resent by default
    assert not ledger.is_complete(ISSUE)


def test_requeue_is_the_editors_explicit_choice(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(6))
    ledger.prepare(ISSUE)
    for mark in ("sent", "failed", "unknown"):
        batch = ledger.claim_batch(ISSUE, 2)
        assert batch is not None
        if mark == "sent":
            ledger.mark_sent(batch.id, None)
        elif mark == "failed":
            ledger.mark_failed(batch.id, "400")
        else:
            ledger.mark_unknown(batch.id, "timeout")
    assert ledger.requeue(ISSUE, {states.UNKNOWN}) == 2
    counts(ledger, sent=2, failed=2, pending=2)
    assert ledger.requeue(ISSUE, {states.FAILED, states.SENT}) == 4
    counts(ledger, pending=6)
    with pytest.raises(ValueError, match="cannot requeue rows that are sending"):
        ledger.requeue(ISSUE, {states.SENDING})
    assert ledger.requeue("never-prepared", {states.SENT}) == 0
    # The last error of a requeued row is still known.
    assert ("user000002@example.org", "400") in list(ledger.recipients(ISSUE, states.PENDING))


def test_requeue_batches_puts_back_a_range_of_batches_that_went_out(
    conn: Connection, ledger: Ledger
) -> None:
    insert_subscribers(conn, numbered(10))
    ledger.prepare(ISSUE)
    assert ledger.last_batch_id(ISSUE) is None
    ids = []
    for mark in ("sent", "sent", "unknown", "failed", "sent"):
        batch = ledger.claim_batch(ISSUE, 2)
        assert batch is not None
        ids.append(batch.id)
        if mark == "sent":
            ledger.mark_sent(batch.id, None)
        elif mark == "failed":
            ledger.mark_failed(batch.id, "400")
        else:
            ledger.mark_unknown(batch.id, "timeout")
    assert ledger.last_batch_id(ISSUE) == ids[-1]
    # After the first batch, through the fourth: the second (sent) and third (unknown).
    assert ledger.requeue_batches(ISSUE, ids[0], ids[3]) == 4
    counts(ledger, sent=4, failed=2, pending=4)
    assert ledger.requeue_batches(ISSUE, ids[0], ids[3]) == 0  # already pending
    # No upper bound: the last batch too; the failed one is never taken.
    assert ledger.requeue_batches(ISSUE, ids[0], None) == 2
    counts(ledger, sent=2, failed=2, pending=6)
    assert ledger.requeue_batches("never-prepared", 0, None) == 0
    assert ledger.is_prepared(ISSUE) and not ledger.is_prepared("never-prepared")


def test_completion_and_sent_issues(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(3))
    for issue in ("one", "two", "three"):
        ledger.prepare(issue)
    assert not ledger.is_complete("one") and not ledger.was_sent("one")
    for issue in ("two", "one"):
        batch = ledger.claim_batch(issue, 10)
        assert batch is not None
        ledger.mark_sent(batch.id, None)
    assert ledger.is_complete("one") and ledger.was_sent("one")
    assert not ledger.is_complete("three") and not ledger.was_sent("three")
    assert ledger.sent_issues(5) == ["one", "two"]
    assert ledger.sent_issues(1) == ["one"]
    assert ledger.issues() == ["one", "two", "three"]
    assert not ledger.is_complete("unknown-issue") and not ledger.was_sent("unknown-issue")


def test_recipients_pages_and_limits(conn: Connection, ledger: Ledger) -> None:
    insert_subscribers(conn, numbered(2500))
    ledger.prepare(ISSUE)
    assert len(list(ledger.recipients(ISSUE, states.PENDING))) == 2500
    assert [e for e, _ in ledger.recipients(ISSUE, states.PENDING, limit=3)] == numbered(3)
    assert list(ledger.recipients(ISSUE, states.PENDING, limit=0)) == []
    while (batch := ledger.claim_batch(ISSUE, 1000)) is not None:
        ledger.mark_unknown(batch.id, f"batch {batch.id}")
    unknown = list(ledger.recipients(ISSUE, states.UNKNOWN))
    assert [e for e, _ in unknown] == numbered(2500)
    assert unknown[-1] == ("user002499@example.org", "batch 3")
    assert len(list(ledger.recipients(ISSUE, states.UNKNOWN, limit=1500))) == 1500
    with pytest.raises(ValueError):
        list(ledger.recipients(ISSUE, "lost"))


# -- crash safety -------------------------------------------------------------------------

SENDER = """
import os, random, sys, time
from pathlib import Path
from newsletter.db import open_database
from newsletter.deliver.ledger import Ledger

from newsletter.db.target import parse_target
where, log, issue = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
db = parse_target(where, workspace=Path("."), where="argv") if "://" in where else Path(where)
ledger = Ledger(open_database(db))
ledger.recover(issue)
with log.open("a") as out:
    while (batch := ledger.claim_batch(issue, 7)) is not None:
        print("claimed", batch.id, flush=True)
        time.sleep(random.random() / 200)
        # The "request": what reached the mail service, made durable before the answer.
        out.write("".join(f"{r.email}\\n" for r in batch.recipients))
        out.flush()
        os.fsync(out.fileno())
        time.sleep(random.random() / 200)
        ledger.mark_sent(batch.id, f"msg-{batch.id}")
print("done", flush=True)
"""


@pytest.mark.slow
def test_sigkill_at_any_point_never_sends_twice(engine: str, tmp_path: Path) -> None:
    db, log = database_target(tmp_path), tmp_path / "delivered.log"
    conn = open_database(db)
    insert_subscribers(conn, numbered(400))
    ledger = Ledger(conn)
    assert ledger.prepare(ISSUE) == 400
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    where = os.environ.get("DATABASE_URL") or str(db)
    command = [sys.executable, "-c", SENDER, where, str(log), ISSUE]
    killed = recovered_total = 0
    for _ in range(12):
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        assert child.stdout is not None
        for _ in range(rng.randint(1, 4)):
            if not child.stdout.readline().startswith("claimed"):
                break
        time.sleep(rng.random() / 100)
        child.send_signal(signal.SIGKILL)
        child.wait()
        killed += child.returncode == -signal.SIGKILL
        # Reopened after the kill: a consistent ledger, and nothing is left `sending`.
        if engine == "sqlite":
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        wait_for_other_sessions(conn)
        before = ledger.counts(ISSUE)
        assert sum(before.values()) == 400
        recovered = ledger.recover(ISSUE)
        recovered_total += recovered
        assert recovered == before[states.SENDING]
        after = ledger.counts(ISSUE)
        assert after[states.SENDING] == 0
        assert after[states.UNKNOWN] == before[states.UNKNOWN] + recovered
    assert killed >= 10 and recovered_total > 0
    finish = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    assert finish.stdout.endswith("done\n")

    delivered = log.read_text().splitlines()
    sent = {email for email, _ in ledger.recipients(ISSUE, states.SENT)}
    unknown = {email for email, _ in ledger.recipients(ISSUE, states.UNKNOWN)}
    assert len(delivered) == len(set(delivered)), "someone got the issue twice"
    assert sent | unknown == set(numbered(400)), "someone was never sent the issue"
    assert sent <= set(delivered) <= sent | unknown
    assert ledger.counts(ISSUE)[states.PENDING] == 0
