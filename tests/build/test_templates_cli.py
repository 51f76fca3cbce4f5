"""`newsletter templates list|eject|diff`: overrides only, so built-in fixes keep arriving."""

from __future__ import annotations

from pathlib import Path

from newsletter.build.template_files import builtin_names, builtin_text
from tests._cli import run

BUILT_INS = [
    "newsletter.mjml.j2",
    "newsletter.txt.j2",
    "partials/footer.mjml.j2",
    "partials/grid.mjml.j2",
    "partials/header.mjml.j2",
    "partials/lead.mjml.j2",
    "partials/list.mjml.j2",
    "partials/macros.mjml.j2",
]


def test_list_shows_the_built_ins_and_no_override(workspace: Path) -> None:
    assert builtin_names() == BUILT_INS
    outcome = run(workspace, "templates", "list")
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines() == BUILT_INS


def test_eject_copies_one_then_list_and_diff_show_it(workspace: Path) -> None:
    outcome = run(workspace, "templates", "eject", "footer")
    assert outcome.exit_code == 0, outcome.stderr
    copy = workspace / "templates" / "partials" / "footer.mjml.j2"
    assert copy.read_text(encoding="utf-8") == builtin_text("partials/footer.mjml.j2")
    assert sorted(p.name for p in (workspace / "templates").rglob("*.j2")) == ["footer.mjml.j2"]
    listed = run(workspace, "templates", "list").stdout.splitlines()
    assert "partials/footer.mjml.j2  overridden (same as built-in)" in listed
    assert run(workspace, "templates", "diff").stdout == (
        "no template differs from the built-in one\n"
    )

    copy.write_text(copy.read_text(encoding="utf-8").replace("Unsubscribe<", "Leave<"))
    assert "partials/footer.mjml.j2  overridden" in run(workspace, "templates", "list").stdout
    diff = run(workspace, "templates", "diff").stdout
    assert diff.startswith("--- built-in/partials/footer.mjml.j2\n+++ templates/partials/footer")
    assert "\n-" in diff and "Leave</a>" in diff
    assert run(workspace, "build", "sample").exit_code == 0


def test_eject_refuses_an_unknown_name_and_an_existing_override(workspace: Path) -> None:
    outcome = run(workspace, "templates", "eject", "sidebar")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        "error: NAME: no built-in template named 'sidebar' — pick one that "
        "`newsletter templates list` shows, e.g. footer\n"
    )
    assert run(workspace, "templates", "eject", "partials/grid.mjml.j2").exit_code == 0
    again = run(workspace, "templates", "eject", "grid")
    assert again.exit_code == 1
    assert "the workspace already overrides this template — edit it there" in again.stderr
