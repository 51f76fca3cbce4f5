"""Run the CLI in-process the way a user does, and capture what they would see."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from newsletter.cli import app


@dataclass
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def run(workspace: Path | None, *args: str, input: str | None = None) -> Outcome:
    runner = CliRunner()
    prefix = ["--workspace", str(workspace)] if workspace else []
    result = runner.invoke(app, [*prefix, *args], input=input, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)
