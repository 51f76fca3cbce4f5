"""Several `newsletter send` of one issue at once.

On SQLite the workspace send lock lets one through at a time. On PostgreSQL (a team whose
editors or crons send from several hosts) nothing stops a second sender: the senders share
the issue's recipients through the ledger's row locks, everyone gets the issue once, and
each sender's summary tells what that sender did. Real processes, a real server.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.deliver.ledger import Ledger
from newsletter.deliver.options import SendOptions
from newsletter.deliver.sender import Sender
from tests._cli import run
from tests._workspace import (
    add_subscribers,
    database,
    ledger_states,
    numbered,
    sample_workspace,
    stub_env,
)
from tests.sendgrid_stub import TEST_API_KEY, SendGridStub

NEWSLETTER = Path(sys.executable).parent / "newsletter"
SEND = ("send", "sample", "--yes", "--no-sync")
SUMMARY = re.compile(r"^sent ([\d,]+), skipped ([\d,]+), failed ([\d,]+), unknown ([\d,]+) in ")


def _start_send(root: Path, issue: str = "sample") -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(NEWSLETTER), "--workspace", str(root), "send", issue, "--yes", "--no-sync"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _workspace(root: Path, stub: SendGridStub, delivery: str = "batch_size = 10") -> Path:
    sample_workspace(root, delivery)
    stub_env(root, stub.url, api_key=TEST_API_KEY)
    return root


def test_the_workspace_send_lock_stops_a_second_send_only_on_sqlite(
    engine: str, tmp_path: Path, stub: SendGridStub
) -> None:
    root = _workspace(tmp_path / "ws", stub)
    add_subscribers(root, numbered(30))
    with Sender(load_settings(root), "sample", SendOptions(sync=False)) as first:
        first.preflight()  # a send under way, in this workspace
        outcome = run(root, "send", "sample", "--yes", "--no-sync")
    if engine == "sqlite":
        assert outcome.exit_code == 5, outcome.stderr
        assert outcome.stderr.startswith(
            f"error: {root / '.newsletter-send.lock'}: another send is running in this workspace"
        )
        assert stub.deliveries(issue="sample") == {}
    else:
        assert outcome.exit_code == 0, outcome.stderr
        assert "sent 30, skipped 0, failed 0, unknown 0 in " in outcome.stdout
        assert stub.deliveries(issue="sample") == {email: 1 for email in numbered(30)}


def test_an_issue_another_sender_finished_since_the_preflight_is_sent_to_nobody_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, stub: SendGridStub
) -> None:
    """PostgreSQL: confirmed on one host while another sent the whole issue, the send
    says it sent nothing (not that the editor erred), and sends nothing."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    root = _workspace(tmp_path / "ws", stub)
    add_subscribers(root, numbered(30))
    with Sender(load_settings(root), "sample", SendOptions(sync=False)) as late:
        assert late.preflight().recipients == 30
        other = run(root, "send", "sample", "--yes", "--no-sync")
        assert other.exit_code == 0, other.stderr
        summary = late.send()
    assert (summary.sent, summary.skipped, summary.failed, summary.unknown) == (0, 0, 0, 0)
    assert summary.ok and summary.requests == 0
    assert stub.deliveries(issue="sample") == {email: 1 for email in numbered(30)}
    again = run(root, "send", "sample", "--yes", "--no-sync")  # a new send is refused
    assert again.exit_code == 1
    assert "issue 'sample' was already sent to 30 recipients" in again.stderr


def _summary(stdout: str) -> tuple[int, int, int, int]:
    """sent, skipped, failed, unknown of the summary line of `send`."""
    for line in stdout.splitlines():
        match = SUMMARY.match(line)
        if match:
            sent, skipped, failed, unknown = (int(n.replace(",", "")) for n in match.groups())
            return sent, skipped, failed, unknown
    raise AssertionError(f"no summary in {stdout!r}")


@pytest.mark.slow
@pytest.mark.parametrize("hosts", [2, 1], ids=["two-hosts", "one-workspace"])
def test_two_sends_at_once_share_the_issue_and_each_tells_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, hosts: int
) -> None:
    """Two `send SLUG --yes` started together on one PostgreSQL database: from two
    workspaces (two hosts, each with its own SendGrid stand-in, so what each sender sent can
    be told apart) or from one. Some subscribers left after the recipients were taken: each
    sender counts only the rows it skipped itself."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    count, gone = 2000, numbered(2000)[7::97]  # 21 unsubscribe after the issue's first run
    with ExitStack() as stack:
        stubs = [
            stack.enter_context(SendGridStub(TEST_API_KEY, delay=0.05, jitter=0.1))
            for _ in range(hosts)
        ]
        roots = [
            _workspace(tmp_path / f"host-{n}", stubs[n], "batch_size = 10\nconcurrency = 2")
            for n in range(hosts)
        ]
        add_subscribers(roots[0], numbered(count))
        conn = database(roots[0])
        try:
            assert Ledger(conn).prepare("sample") == count  # the recipients are taken
            conn.executemany(
                "UPDATE subscribers SET status = 'unsubscribed' WHERE email = ?",
                [(email,) for email in gone],
            )
        finally:
            conn.close()
        runs = [_start_send(roots[n % hosts]) for n in range(2)]
        outputs = [process.communicate(timeout=300) for process in runs]
        deliveries = [stub.deliveries(issue="sample") for stub in stubs]
    assert [process.returncode for process in runs] == [0, 0], outputs
    summaries = [_summary(stdout) for stdout, _ in outputs]
    print(f"{hosts} workspace(s): sent, skipped, failed, unknown of each: {summaries}")
    assert all(sent > 0 for sent, _, _, _ in summaries), "the two sends did not overlap"
    assert all(failed == unknown == 0 for _, _, failed, unknown in summaries)
    # Together: everyone still subscribed exactly once, nobody else; every skip told once.
    everyone = sorted(set(numbered(count)) - set(gone))
    assert sum(deliveries, Counter()) == {email: 1 for email in everyone}
    assert sum(sent for sent, _, _, _ in summaries) == len(everyone)
    assert sum(skipped for _, skipped, _, _ in summaries) == len(gone)
    if hosts == 2:  # each tells exactly what reached its own stand-in
        assert [sent for sent, _, _, _ in summaries] == [sum(d.values()) for d in deliveries]
    states = Counter(ledger_states(roots[0], "sample").values())
    assert states == {"sent": len(everyone), "skipped": len(gone)}


def test_two_first_sends_at_once_write_the_list_and_both_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, stub: SendGridStub
) -> None:
    """Two first sends of an issue started together, with answers at once and small
    batches: both write chunks of the list and claim to its very end at the same moments
    (where row locks on the issue once deadlocked one of them), and both finish."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    count = 3000
    root = _workspace(tmp_path / "ws", stub, "batch_size = 10\nconcurrency = 8")
    add_subscribers(root, numbered(count))
    shutil.copytree(root / "issues" / "sample", root / "issues" / "again")
    for issue in ("sample", "again"):  # twice: the moment it once went wrong is a race
        runs = [_start_send(root, issue) for _ in range(2)]
        outputs = [process.communicate(timeout=300) for process in runs]
        assert [process.returncode for process in runs] == [0, 0], outputs
        assert stub.deliveries(issue=issue) == {email: 1 for email in numbered(count)}
        assert set(ledger_states(root, issue).values()) == {"sent"}


def test_a_resend_waits_for_no_one_and_no_one_joins_a_resend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_url: str, stub: SendGridStub
) -> None:
    """PostgreSQL: `--resend` puts back what other senders may be sending at that moment,
    so it runs alone: refused while another sender of the issue runs, and refusing them."""
    monkeypatch.setenv("DATABASE_URL", postgres_url)
    root = _workspace(tmp_path / "ws", stub)
    add_subscribers(root, numbered(12))
    with Sender(load_settings(root), "sample", SendOptions(sync=False)) as running:
        running.preflight()
        resend = run(root, *SEND, "--resend")
    assert resend.exit_code == 5, resend.stderr
    assert "another send of 'sample' is running, and --resend must run alone" in resend.stderr
    assert stub.deliveries(issue="sample") == {}

    assert run(root, *SEND).exit_code == 0
    with Sender(load_settings(root), "sample", SendOptions(sync=False, resend=True)) as again:
        again.preflight()
        joining = run(root, *SEND, "--new-subscribers")
    assert joining.exit_code == 5, joining.stderr
    assert "a --resend of 'sample' is running" in joining.stderr
    assert stub.deliveries(issue="sample") == {email: 1 for email in numbered(12)}
