"""The crash test: `newsletter send` SIGKILLed at random points, then rerun to the end.

Afterwards every active subscriber has the issue exactly once, except those the ledger
reports as unknown (at most once), and nobody is missing. With requests in flight
(`[delivery] concurrency = 8`) a kill leaves at most 8 batches `sending` (the next run's
unknowns), never more. The stub runs in its own process so that its record of deliveries
outlives every killed sender. On both engines; on PostgreSQL also with a second sender (a
second host) sending the same issue all along, which the kills must never make send twice.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO

import pytest

from newsletter.db.postgres import SENDER_CLASS
from tests._workspace import (
    add_subscribers,
    database,
    ledger_states,
    numbered,
    sample_workspace,
    stub_env,
    wait_for_other_sessions,
)
from tests.sendgrid_stub import StubProcess, bypass_proxy_for_loopback

SUBSCRIBERS = 6000
KILLED_RUNS = 15
SEED = int(os.environ.get("NEWSLETTER_CRASH_SEED", "20261201"))
NEWSLETTER = Path(sys.executable).parent / "newsletter"


def _send(root: Path, stdout: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(NEWSLETTER), "--workspace", str(root), "send", "sample", "--yes", "--no-sync"],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
    )


def _rerun_until_done(root: Path) -> list[tuple[int, str]]:
    """Send again until a run finds nothing left to do (at most 5 runs): exit codes, stderr."""
    finals = []
    for _ in range(5):
        process = _send(root)
        _, stderr = process.communicate(timeout=120)
        finals.append((process.returncode, stderr.decode()))
        if process.returncode in (0, 1) and "not confirmed sent" not in stderr.decode():
            break
    return finals


def _wait_for_requests(stub: StubProcess, process: subprocess.Popen[bytes], count: int) -> None:
    """Until the stub has seen `count` requests in all (or the sender has ended)."""
    deadline = time.monotonic() + 30
    while len(stub.requests()) < count and process.poll() is None:
        assert time.monotonic() < deadline, "the sender made no progress"
        time.sleep(0.005)


def _left_sending(root: Path) -> int:
    """Batches a killed run left `sending`: the next run records them as unknown.

    On PostgreSQL first until the server has ended the killed run's session: only then
    can the next run tell that its batches' sender is gone."""
    conn = database(root)
    try:
        wait_for_other_sessions(conn)
        (count,) = conn.execute("SELECT count(*) FROM batches WHERE state = 'sending'").fetchone()
        return int(count)
    finally:
        conn.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("concurrency", "batch_size"),
    [(1, 100), (8, 20)],  # smaller batches at 8: enough of them left for every kill
)
def test_killed_sends_never_send_anyone_the_issue_twice(
    engine: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    concurrency: int,
    batch_size: int,
) -> None:
    bypass_proxy_for_loopback(monkeypatch)
    rng = random.Random(SEED)
    extra = ["--no-record-bodies", "--delay", "0.03", "--jitter", "0.03"]
    with StubProcess(port_file=tmp_path / "stub.port", extra_args=extra) as stub:
        delivery = f"batch_size = {batch_size}\nconcurrency = {concurrency}"
        root = sample_workspace(tmp_path / "ws", delivery)
        stub_env(root, stub.url)
        add_subscribers(root, numbered(SUBSCRIBERS))
        add_subscribers(root, ["gone@example.org"], status="unsubscribed")
        killed = 0
        left_per_kill: list[int] = []
        for _ in range(KILLED_RUNS):
            if rng.random() < 0.3:  # now and then a lost answer, to make some unknowns
                stub.plan(*["202"] * rng.randrange(5), "drop_before_response")
            process = _send(root)
            more = rng.randrange(4 * concurrency)
            _wait_for_requests(stub, process, len(stub.requests()) + more)
            time.sleep(rng.uniform(0.0, 0.05))  # before, during or after a request
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
            left_per_kill.append(_left_sending(root))
        finals = _rerun_until_done(root)
        deliveries = stub.deliveries(issue="sample")
    assert killed >= KILLED_RUNS - 2, f"only {killed} runs were killed mid-way (seed {SEED})"
    print(
        f"{engine}, concurrency {concurrency}: batches left sending by each kill: {left_per_kill}"
    )
    assert max(left_per_kill) <= concurrency, left_per_kill
    if concurrency > 1:
        assert max(left_per_kill) > 1, f"no kill caught several requests in flight (seed {SEED})"
    by_state = _each_once_apart_from_unknowns(
        ledger_states(root, "sample"), deliveries, numbered(SUBSCRIBERS), finals
    )
    # The kills landed both before requests and while answers were awaited.
    unknown_delivered = sum(deliveries.get(email, 0) for email in by_state.get("unknown", []))
    assert unknown_delivered > 0, f"no kill landed after a request was taken (seed {SEED})"


# --------------------------------------------------------------------------- two senders

TWO_SENDERS_SUBSCRIBERS = 12000
SUMMARY = re.compile(r"^sent ([\d,]+), skipped ([\d,]+), failed ([\d,]+), unknown ([\d,]+) in ")


def _orphaned(root: Path, running: subprocess.Popen[bytes]) -> int:
    """Batches left `sending` by a sender that is gone: the killed one's, not those the
    `running` sender is waiting on (its key is held). Counted once the server has ended
    every session but the running sender's."""
    conn = database(root)
    try:
        wait_for_other_sessions(conn, alive=[running.pid])
        (count,) = conn.execute(
            "SELECT count(*) FROM batches AS b WHERE b.state = 'sending' AND NOT EXISTS ("
            "SELECT 1 FROM pg_locks AS l WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objsubid = 2 AND l.classid::bigint = ? AND l.objid::bigint = b.claimed_by "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            (SENDER_CLASS,),
        ).fetchone()
        return int(count)
    finally:
        conn.close()


def _summary(output: Path) -> tuple[int, int, int, int]:
    """sent, skipped, failed, unknown of a `send` run's summary line; zeros without one
    (a run that found nothing left to send)."""
    for line in output.read_text(encoding="utf-8").splitlines():
        match = SUMMARY.match(line)
        if match:
            sent, skipped, failed, unknown = (int(n.replace(",", "")) for n in match.groups())
            return sent, skipped, failed, unknown
    return 0, 0, 0, 0


@pytest.mark.slow
def test_a_killed_sender_beside_a_running_one_never_sends_anyone_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str
) -> None:
    """Two hosts send one issue from one PostgreSQL database: host B runs on (restarted
    only when it finishes), host A is SIGKILLed at random points and restarted. B's
    batches in flight are never taken for a dead sender's, A's orphans never outnumber
    its requests in flight, everyone gets the issue once, and B's summaries add up to
    exactly what B's own SendGrid stand-in received."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    bypass_proxy_for_loopback(monkeypatch)
    rng = random.Random(SEED)
    concurrency = 8
    extra = ["--no-record-bodies", "--delay", "0.03", "--jitter", "0.03"]
    slow = ["--no-record-bodies", "--delay", "0.15", "--jitter", "0.1"]
    with (
        StubProcess(port_file=tmp_path / "a.port", extra_args=extra) as stub_a,
        StubProcess(port_file=tmp_path / "b.port", extra_args=slow) as stub_b,
    ):
        host_a = sample_workspace(
            tmp_path / "host-a", f"batch_size = 20\nconcurrency = {concurrency}"
        )
        host_b = sample_workspace(tmp_path / "host-b", "batch_size = 20\nconcurrency = 1")
        stub_env(host_a, stub_a.url)
        stub_env(host_b, stub_b.url)
        add_subscribers(host_a, numbered(TWO_SENDERS_SUBSCRIBERS))
        add_subscribers(host_a, ["gone@example.org"], status="unsubscribed")
        b_outputs: list[Path] = []
        b_codes: list[int] = []

        def start_b() -> subprocess.Popen[bytes]:
            output = tmp_path / f"b-{len(b_outputs)}.out"
            b_outputs.append(output)
            with output.open("wb") as stream:
                return _send(host_b, stream)

        def finish_b(process: subprocess.Popen[bytes]) -> None:
            _, stderr = process.communicate(timeout=300)
            b_codes.append(process.returncode)
            assert process.returncode in (0, 1, 3), stderr.decode()

        b = start_b()
        killed = 0
        left_per_kill: list[int] = []
        for _ in range(KILLED_RUNS):
            if b.poll() is not None:  # B ran out of work it could take: it starts again
                finish_b(b)
                b = start_b()
            if rng.random() < 0.3:
                stub_a.plan(*["202"] * rng.randrange(5), "drop_before_response")
            process = _send(host_a)
            more = rng.randrange(4 * concurrency)
            _wait_for_requests(stub_a, process, len(stub_a.requests()) + more)
            time.sleep(rng.uniform(0.0, 0.05))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
            process.wait()
            left_per_kill.append(_orphaned(host_a, b))
        b_was_running = b.poll() is None
        # A's last run and B end the issue together; then A's reruns take what is left.
        last = _send(host_a)
        _, stderr = last.communicate(timeout=300)
        finals = [(last.returncode, stderr.decode())]
        finish_b(b)
        finals += _rerun_until_done(host_a)
        deliveries_a = stub_a.deliveries(issue="sample")
        deliveries_b = stub_b.deliveries(issue="sample")
    print(f"two senders: batches A left sending by each kill: {left_per_kill}; B runs {b_codes}")
    assert killed >= KILLED_RUNS - 2, f"only {killed} runs were killed mid-way (seed {SEED})"
    assert b_was_running, "B finished before A's kills did: the senders hardly overlapped"
    assert max(left_per_kill) <= concurrency, left_per_kill
    deliveries = deliveries_a + deliveries_b
    assert sum(deliveries_b.values()) > 0, "B sent nothing: the senders never shared the issue"
    _each_once_apart_from_unknowns(
        ledger_states(host_a, "sample"), deliveries, numbered(TWO_SENDERS_SUBSCRIBERS), finals
    )
    # B lost no answer: each of its summaries counts exactly what reached its stand-in.
    b_summaries = [_summary(output) for output in b_outputs]
    assert sum(sent for sent, _, _, _ in b_summaries) == sum(deliveries_b.values()), b_summaries
    assert all(failed == unknown == 0 for _, _, failed, unknown in b_summaries), b_summaries


def _each_once_apart_from_unknowns(
    states: dict[str, str], deliveries: Counter[str], everyone: list[str], finals: object
) -> dict[str, list[str]]:
    """Every active subscriber is in the ledger, sent or unknown; the sent got the issue
    exactly once, the unknown at most once, and nobody else got it. Rows by state."""
    assert sorted(states) == sorted(everyone), "every active subscriber is in the ledger"
    by_state: dict[str, list[str]] = {}
    for email, state in states.items():
        by_state.setdefault(state, []).append(email)
    assert set(by_state) <= {"sent", "unknown"}, (finals, {k: len(v) for k, v in by_state.items()})
    twice = {email: n for email, n in deliveries.items() if n > 1}
    assert twice == {}, f"sent twice (seed {SEED})"
    assert all(deliveries[email] == 1 for email in by_state["sent"])
    assert all(deliveries.get(email, 0) <= 1 for email in by_state.get("unknown", []))
    assert set(deliveries) <= set(everyone), "nobody else got it"
    return by_state
