"""The crash test: `newsletter send` SIGKILLed at random points, then rerun to the end.

Afterwards every active subscriber has the issue exactly once, except those the ledger
reports as unknown (at most once), and nobody is missing. With requests in flight
(`[delivery] concurrency = 8`) a kill leaves at most 8 batches `sending` (the next run's
unknowns), never more. The stub runs in its own process so that its record of deliveries
outlives every killed sender.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests._workspace import (
    add_subscribers,
    database,
    ledger_states,
    numbered,
    sample_workspace,
    stub_env,
)
from tests.sendgrid_stub import StubProcess, bypass_proxy_for_loopback

SUBSCRIBERS = 6000
KILLED_RUNS = 15
SEED = int(os.environ.get("NEWSLETTER_CRASH_SEED", "20261201"))
NEWSLETTER = Path(sys.executable).parent / "newsletter"


def _send(root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(NEWSLETTER), "--workspace", str(root), "send", "sample", "--yes", "--no-sync"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_requests(stub: StubProcess, process: subprocess.Popen[bytes], count: int) -> None:
    """Until the stub has seen `count` requests in all (or the sender has ended)."""
    deadline = time.monotonic() + 30
    while len(stub.requests()) < count and process.poll() is None:
        assert time.monotonic() < deadline, "the sender made no progress"
        time.sleep(0.005)


def _left_sending(root: Path) -> int:
    """Batches a killed run left `sending`: the next run records them as unknown."""
    conn = database(root)
    try:
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
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, concurrency: int, batch_size: int
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
        finals = []
        for _ in range(5):  # until a run finds nothing left to do
            process = _send(root)
            _, stderr = process.communicate(timeout=120)
            finals.append((process.returncode, stderr.decode()))
            if process.returncode in (0, 1) and "not confirmed sent" not in stderr.decode():
                break
        deliveries = stub.deliveries(issue="sample")
    assert killed >= KILLED_RUNS - 2, f"only {killed} runs were killed mid-way (seed {SEED})"
    print(f"concurrency {concurrency}: batches left sending by each kill: {left_per_kill}")
    assert max(left_per_kill) <= concurrency, left_per_kill
    if concurrency > 1:
        assert max(left_per_kill) > 1, f"no kill caught several requests in flight (seed {SEED})"
    states = ledger_states(root, "sample")
    everyone = numbered(SUBSCRIBERS)
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
    # The kills landed both before requests and while answers were awaited.
    unknown_delivered = sum(deliveries.get(email, 0) for email in by_state.get("unknown", []))
    assert unknown_delivered > 0, f"no kill landed after a request was taken (seed {SEED})"
