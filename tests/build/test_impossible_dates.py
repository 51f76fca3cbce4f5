"""Impossible dates (2026-02-30, 2026-13-01) are one located line, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests._cli import run
from tests._workspace import sample_workspace

FIX = "write a real date as YYYY-MM-DD"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return sample_workspace(tmp_path / "ws")


def _issue(root: Path) -> Path:
    return root / "issues" / "sample" / "issue.yaml"


def _set_top_date(root: Path, value: str) -> int:
    path = _issue(root)
    text, count = re.subn(
        r"^date: .*$", f"date: {value}", path.read_text("utf-8"), count=1, flags=re.M
    )
    assert count == 1
    path.write_text(text, encoding="utf-8")
    return text.splitlines().index(f"date: {value}") + 1


def _set_article_date(root: Path, value: str) -> int:
    path = _issue(root)
    lines = path.read_text("utf-8").splitlines()
    articles = next(i for i, line in enumerate(lines) if line.strip() == "articles:")
    at = next(i for i in range(articles, len(lines)) if lines[i].strip().startswith("- title:"))
    indent = lines[at].index("-") + 2
    lines.insert(at + 1, " " * indent + f"date: {value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return at + 2


@pytest.mark.parametrize("value", ["2026-02-30", "2026-13-01"])
@pytest.mark.parametrize("where", ["top", "article"])
@pytest.mark.parametrize("command", [("build", "sample"), ("check", "sample")])
def test_an_impossible_date_is_one_located_line(
    root: Path, value: str, where: str, command: tuple[str, ...]
) -> None:
    line = _set_top_date(root, value) if where == "top" else _set_article_date(root, value)
    outcome = run(root, *command)
    assert outcome.exit_code == 1, outcome.stderr
    field = "date" if where == "top" else r"sections\[\d+\]\.articles\[\d+\]\.date"
    assert re.fullmatch(
        rf"error: {re.escape(str(_issue(root)))}:{line}: {field}: '{value}' is not a real date"
        rf" \([^)]+\) — {FIX}\n",
        outcome.stderr,
    ), outcome.stderr


def test_add_refuses_an_issue_with_an_impossible_date_before_any_download(root: Path) -> None:
    line = _set_top_date(root, "2026-02-30")
    before = _issue(root).read_bytes()
    outcome = run(root, "add", "sample", "https://127.0.0.1:9/never-fetched")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {_issue(root)}:{line}: date: '2026-02-30' is not a real date (day is out of"
        f" range for month) — {FIX}\n"
    )
    assert _issue(root).read_bytes() == before


def test_a_quoted_impossible_date_hides_pydantics_wording(root: Path) -> None:
    line = _set_top_date(root, '"2026-02-30"')
    outcome = run(root, "build", "sample")
    assert outcome.exit_code == 1
    assert "Input should be" not in outcome.stderr
    assert outcome.stderr.startswith(f"error: {_issue(root)}:{line}: date: is not a real date (")
    assert outcome.stderr.endswith(f" — {FIX}\n")


@pytest.mark.parametrize(
    ("at", "message"),
    [
        ("2026-02-30 08:00", "'2026-02-30' is not a real date (day is out of range for month)"),
        ("2026-13-01 08:00", "'2026-13-01' is not a real date (month must be in 1..12)"),
    ],
)
def test_schedule_at_refuses_an_impossible_date(root: Path, at: str, message: str) -> None:
    outcome = run(root, "schedule", "sample", "--at", at, "--tz", "UTC")
    assert outcome.exit_code == 1
    assert outcome.stderr == (f'error: --at: {message} — {FIX}, e.g. --at "2026-12-01 08:00"\n')
