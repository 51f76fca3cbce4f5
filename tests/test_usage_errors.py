"""A mistyped command line is one `error:` line naming the help to read, exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests._workspace import sample_workspace

CASES = [
    (("send", "--due", "--backend", "outbox"), "--backend does not apply to --due", "send"),
    (("schedule", "--list", "--since", "x"), "No such option: --since", "schedule"),
    (("add", "sample", "page.html", "--since", "garbage"), "'garbage' is not a date", "add"),
    (("add", "sample"), "Missing argument 'SOURCE...'", "add"),
    (("nosuch",), "No such command 'nosuch'", None),
    (("--bogus",), "No such option: --bogus", None),
    (("subscribers", "bogus"), "No such command 'bogus'", "subscribers"),
    (("subscribers", "list", "-n", "0"), "--limit: must be at least 1", "subscribers list"),
    (("add", "sample", "x.html", "-n", "abc"), "--limit: must be a whole number", "add"),
    (("serve", "--port", "99999"), "--port: must be at most 65535", "serve"),
]


def _newsletter(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A real process: click prints its usage block from main(), outside any test runner.
    return subprocess.run(
        [str(Path(sys.executable).with_name("newsletter")), *args],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("args", "said", "command"), CASES, ids=lambda v: str(v))
def test_usage_mistakes_are_one_line(
    tmp_path: Path, args: tuple[str, ...], said: str, command: str | None
) -> None:
    workspace = sample_workspace(tmp_path / "ws")

    done = _newsletter(workspace, *args)

    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and said in line
    help_of = f"newsletter {command}" if command else "newsletter"
    assert line.endswith(f"see `{help_of} --help`")
    assert "Usage:" not in done.stderr


def test_a_group_without_a_command_still_shows_its_help(tmp_path: Path) -> None:
    done = _newsletter(sample_workspace(tmp_path / "ws"), "subscribers")

    assert "Usage: newsletter subscribers" in done.stdout + done.stderr
    assert "import" in done.stdout + done.stderr
