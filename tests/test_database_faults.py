"""The workspace database when it cannot be written or is damaged: one line, never partial data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._cli import run
from tests._workspace import generate_csv, read_only_view, sample_workspace

READ_ONLY_COMMANDS = (
    ("subscribers", "list"),
    ("subscribers", "stats"),
    ("status", "sample"),
    ("schedule", "--list"),
)


@pytest.fixture
def read_only_workspace(tmp_path: Path) -> Iterator[Path]:
    """A workspace with a list, seen through a read-only mount (root) or read-only modes."""
    root = sample_workspace(tmp_path / "ws")
    assert (
        run(root, "subscribers", "import", str(generate_csv(tmp_path / "l.csv", 5))).exit_code == 0
    )
    with read_only_view(root, tmp_path) as view:
        yield view


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS, ids=" ".join)
def test_reading_commands_work_on_a_read_only_workspace(
    read_only_workspace: Path, command: tuple[str, ...]
) -> None:
    outcome = run(read_only_workspace, *command)

    assert "database" not in outcome.stderr.lower()
    assert "read-only" not in outcome.stderr.lower()
    if command == ("status", "sample"):
        assert "nothing has been sent for issue 'sample'" in outcome.stderr
    else:
        assert outcome.exit_code == 0, outcome.stderr
    if command == ("subscribers", "list"):
        assert outcome.exit_code == 0
        assert outcome.stdout.count("@example.org") == 5
    elif command == ("subscribers", "stats"):
        assert outcome.exit_code == 0
        assert "5 subscribers" in outcome.stdout


def test_export_works_on_a_read_only_workspace(read_only_workspace: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"

    outcome = run(read_only_workspace, "subscribers", "export", str(target))

    assert outcome.exit_code == 0, outcome.stderr
    assert target.read_text(encoding="utf-8").count("@example.org") == 5


def test_a_write_to_a_read_only_workspace_is_one_line(read_only_workspace: Path) -> None:
    outcome = run(read_only_workspace, "subscribers", "unsubscribe", "reader1@example.org")

    assert outcome.exit_code == 1
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "database is read-only" in lines[0] and "newsletter.db" in lines[0]
    assert "Traceback" not in outcome.stderr


def _damage(database: Path) -> None:
    size = database.stat().st_size
    with database.open("r+b") as stream:
        stream.seek(size // 2)
        stream.write(os.urandom(8192))


@pytest.mark.parametrize(
    "command",
    [
        ("subscribers", "stats"),
        ("subscribers", "list"),
        ("status", "sample"),
        ("subscribers", "import", "LIST"),
        ("send", "sample", "--yes", "--backend", "outbox"),
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_a_damaged_database_is_refused_with_how_to_restore(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    root = sample_workspace(tmp_path / "ws")
    listing = generate_csv(tmp_path / "l.csv", 3000)
    assert run(root, "subscribers", "import", str(listing)).exit_code == 0
    _damage(root / "newsletter.db")

    args = [str(listing) if part == "LIST" else part for part in command]
    outcome = run(root, *args)

    assert outcome.exit_code == 1
    lines = outcome.stderr.strip().splitlines()
    assert len(lines) == 1, outcome.stderr
    assert "database is damaged" in lines[0]
    assert "restore newsletter.db from a backup" in lines[0]
    assert "@example.org" not in outcome.stdout  # no partial data printed
    assert not (root / "outbox" / "sample").exists()


def test_a_dry_run_works_on_a_read_only_workspace(read_only_workspace: Path) -> None:
    outcome = run(read_only_workspace, "send", "sample", "--dry-run")

    assert outcome.exit_code == 0, outcome.stderr
    assert "recipients  5 (5 active subscribers)" in outcome.stdout
    assert "ok: every request is valid" in outcome.stdout
