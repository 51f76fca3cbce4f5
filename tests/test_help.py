"""Every command explains itself: help text with an example, and a place in the README."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from newsletter.cli import app
from tests._cli import run

README = Path(__file__).resolve().parent.parent / "README.md"


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        if getattr(command, "commands", None):
            yield from _commands(command, path)
        else:
            yield path


COMMANDS = list(_commands(typer.main.get_command(app)))


def test_there_are_commands() -> None:
    assert ("build",) in COMMANDS and ("check",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    outcome = run(None, *path, "--help")
    assert outcome.exit_code == 0
    assert "Example" in outcome.stdout, f"`newsletter {' '.join(path)} --help` shows no example"
    assert f"newsletter {' '.join(path)}" in outcome.stdout


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    assert f"newsletter {' '.join(path)}" in README.read_text(encoding="utf-8")


def test_help_does_not_import_the_heavy_modules() -> None:
    code = (
        "import sys; from newsletter.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('premailer', 'mjml', 'sendgrid', 'playwright', 'trafilatura',"
        " 'feedparser', 'lxml.html', 'watchfiles') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert "HEAVY=\n" in result.stdout, result.stdout.rsplit("HEAVY=", 1)[-1]
