"""A first send writes its list while it sends (`deliver.preparation`): through the CLI,
everyone once; a dry run of a list left half-written reads the rest and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.deliver.ledger import Ledger
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

LIST = 2500


@pytest.fixture
def root(engine: str, tmp_path: Path, stub: SendGridStub) -> Path:
    # Batches of 10: the list is written 100 rows at a time, 25 chunks.
    workspace = sample_workspace(tmp_path / "ws", "batch_size = 10\nconcurrency = 8")
    stub_env(workspace, stub.url, api_key=TEST_API_KEY)
    add_subscribers(workspace, numbered(LIST))
    return workspace


def marks(root: Path) -> tuple[int, tuple[object, object]]:
    conn = database(root)
    try:
        (rows,) = conn.execute("SELECT count(*) FROM ledger").fetchone()
        found = conn.execute(
            "SELECT prepared_through, prepare_until FROM ledger_issues WHERE slug = 'sample'"
        ).fetchone()
        return int(rows), tuple(found)
    finally:
        conn.close()


def test_a_first_send_of_many_chunks_reaches_everyone_once(root: Path, stub: SendGridStub) -> None:
    outcome = run(root, "send", "sample", "--yes", "--no-sync")
    assert outcome.exit_code == 0, outcome.stderr
    assert f"sent {LIST:,}, skipped 0, failed 0, unknown 0" in outcome.stdout
    assert stub.deliveries(issue="sample") == {email: 1 for email in numbered(LIST)}
    assert set(ledger_states(root, "sample").values()) == {"sent"}
    assert marks(root) == (LIST, (None, None))


def test_a_dry_run_of_a_half_written_list_checks_everyone_and_writes_nothing(
    root: Path, stub: SendGridStub
) -> None:
    conn = database(root)
    try:  # as a first send stopped after its first chunk leaves it
        assert Ledger(conn).prepare("sample", rows=100) == 100
    finally:
        conn.close()
    before = marks(root)
    outcome = run(root, "send", "sample", "--dry-run")
    assert outcome.exit_code == 0, outcome.stderr
    assert f"recipients  {LIST:,} ({LIST:,} active subscribers)" in outcome.stdout
    assert "requests    250 " in outcome.stdout
    assert stub.requests == []
    assert marks(root) == before == (100, (100, LIST))
    shown = run(root, "status", "sample")
    assert f"0 of {LIST:,} recipients sent — not complete" in shown.stdout
