"""Settings the build cannot use are one line naming newsletter.toml and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli import run
from tests._workspace import sample_workspace


def _set(root: Path, section: str, line: str) -> None:
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert f"[{section}]\n" in text
    config.write_text(text.replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1), "utf-8")


@pytest.mark.parametrize("value", ['"newsletter@"', '""', '"not-an-email"', '"@example.org"'])
@pytest.mark.parametrize("field", ["email", "reply_to"])
def test_a_sender_address_that_is_not_one_is_refused_when_settings_are_read(
    tmp_path: Path, field: str, value: str
) -> None:
    root = sample_workspace(tmp_path / "ws")
    config = root / "newsletter.toml"
    text = "\n".join(
        line for line in config.read_text("utf-8").splitlines() if not line.startswith(f"{field} =")
    )
    config.write_text(text + "\n", "utf-8")
    _set(root, "sender", f"{field} = {value}")

    outcome = run(root, "build", "sample")

    assert outcome.exit_code == 1
    (line,) = outcome.stderr.splitlines()
    assert line.startswith(f"error: {config}: [sender.{field}] {value.strip(chr(34))!r}")
    assert "is not an email address" in line
    assert "Traceback" not in outcome.stderr


def test_a_colour_that_is_not_one_is_said_in_words(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    config = root / "newsletter.toml"
    text = "\n".join(
        line for line in config.read_text("utf-8").splitlines() if "primary_color" not in line
    )
    config.write_text(text + "\n", "utf-8")
    _set(root, "brand", 'primary_color = "blue"')

    outcome = run(root, "build", "sample")

    assert outcome.exit_code == 1
    assert "[brand.primary_color] 'blue' is not a colour: write it as #rrggbb" in outcome.stderr
    assert "String should match pattern" not in outcome.stderr


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ('batch_size = "lots"', "[delivery.batch_size] must be a whole number (it is 'lots')"),
        ("batch_size = 5000", "[delivery.batch_size] must be at most 1000 (it is 5000)"),
        ("batch_size = 0", "[delivery.batch_size] must be at least 1 (it is 0)"),
    ],
)
def test_a_number_setting_is_said_in_words(tmp_path: Path, line: str, said: str) -> None:
    root = sample_workspace(tmp_path / "ws")
    config = root / "newsletter.toml"
    text = "\n".join(
        kept for kept in config.read_text("utf-8").splitlines() if "batch_size" not in kept
    )
    config.write_text(text + "\n", "utf-8")
    _set(root, "delivery", line)

    outcome = run(root, "build", "sample")

    assert outcome.exit_code == 1
    (error,) = outcome.stderr.splitlines()
    assert said in error
    assert "Input should" not in error


def test_a_sender_name_longer_than_a_header_can_carry_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    root = sample_workspace(tmp_path / "ws")
    config = root / "newsletter.toml"
    text = "\n".join(
        line
        for line in config.read_text("utf-8").splitlines()
        if not line.startswith('name = "The Balkan Brief"') or "[sender]" in line
    )
    config.write_text(text + "\n", "utf-8")
    _set(root, "sender", f'name = "{"Balkan " * 430}"')

    outcome = run(root, "send", "sample", "--dry-run", "--backend", "outbox")

    assert outcome.exit_code == 1
    line = outcome.stderr.splitlines()[-1]
    assert "the sender name is 3,010 characters long" in line
    assert "[sender] name" in line and "at most 200" in line
