"""One convention for every command's options: a short letter means one thing everywhere,
values are named in capitals, and `--workspace` works before or after the command."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from typer.main import get_command

from newsletter.cli import app
from tests._cli import run
from tests._workspace import add_subscribers, numbered, sample_workspace


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    children = getattr(command, "commands", None)
    if children:
        for name, child in children.items():
            yield from _commands(child, (*path, name))
    else:
        yield " ".join(path), command


def _options() -> Iterator[tuple[str, Any]]:
    for path, command in _commands(get_command(app)):
        for param in command.params:
            if param.param_type_name == "option":
                yield path, param


def test_a_short_option_means_the_same_everywhere() -> None:
    meanings: dict[str, set[str]] = defaultdict(set)
    for _path, option in _options():
        longs = [name for name in option.opts if name.startswith("--")]
        for short in (name for name in option.opts if re.fullmatch(r"-\w", name)):
            meanings[short].update(longs)

    assert meanings, "no short options found"
    assert {short: longs for short, longs in meanings.items() if len(longs) > 1} == {}


def test_every_value_is_named_in_capitals() -> None:
    unnamed = [
        f"{path} {option.opts[0]}"
        for path, option in _options()
        if not option.is_flag and not re.fullmatch(r"[A-Z][A-Z_]*", option.metavar or "")
    ]
    assert unnamed == []


def test_workspace_works_after_the_command(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, numbered(2))

    for args in (
        ("subscribers", "list", "-w", str(root)),
        ("subscribers", "list", f"--workspace={root}"),
        ("subscribers", "list", "--workspace", str(root), "-n", "1"),
    ):
        outcome = run(None, *args)
        assert outcome.exit_code == 0, (args, outcome.stderr)
        assert "@example.org" in outcome.stdout
