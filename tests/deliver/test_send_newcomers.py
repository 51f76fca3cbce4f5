"""Recipients are taken at an issue's first send; later subscribers only on request."""

from __future__ import annotations

from pathlib import Path

from tests._workspace import add_subscribers, ledger_states, numbered
from tests.deliver.test_send import delivered_once, send, workspace_with
from tests.sendgrid_stub import SendGridStub


def test_subscribers_who_join_after_a_send_get_it_only_with_new_subscribers(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 3)
    assert send(root, "--yes").exit_code == 0
    add_subscribers(root, numbered(2, start=3))
    again = send(root, "--yes")
    assert again.exit_code == 1
    assert "--new-subscribers` sends it to those who subscribed since" in again.stderr
    newcomers = send(root, "--yes", "--new-subscribers")
    assert newcomers.exit_code == 0, newcomers.stderr
    assert "recipients  2 (5 active subscribers, 3 already sent)" in newcomers.stdout
    assert "sent 2, skipped 0, failed 0, unknown 0" in newcomers.stdout
    assert delivered_once(stub, numbered(5))
    nothing = send(root, "--yes", "--new-subscribers")
    assert nothing.exit_code == 0
    assert nothing.stdout.splitlines()[-1] == "nothing to send"
    assert delivered_once(stub, numbered(5))


def test_a_resumed_send_goes_on_with_the_recipients_taken_at_its_start(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 4, "batch_size = 2")
    stub.plan("202", "401")  # the key is refused mid-send: the second batch is released
    stopped = send(root, "--yes", "--no-sync")
    assert stopped.exit_code == 4
    add_subscribers(root, numbered(1, start=4))
    resumed = send(root, "--yes", "--no-sync")
    assert resumed.exit_code == 0, resumed.stderr
    assert "sent 2, skipped 0, failed 0, unknown 0" in resumed.stdout
    assert numbered(1, start=4)[0] not in ledger_states(root, "sample")
    assert delivered_once(stub, numbered(4))
    joined = send(root, "--yes", "--no-sync", "--new-subscribers")
    assert "sent 1, skipped 0, failed 0, unknown 0" in joined.stdout
    assert delivered_once(stub, numbered(5))


def test_new_subscribers_is_refused_with_due(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 1)
    outcome = send(root, "--due", "--new-subscribers")
    assert outcome.exit_code == 2
