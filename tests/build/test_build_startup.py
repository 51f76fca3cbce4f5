"""What a build loads and keeps between runs: no network stack, compiled templates cached
by content. (Timings are the benchmark's business: bench/bench_build.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli import run

PACKAGE_TEMPLATES = Path(__file__).resolve().parents[2] / "src" / "newsletter" / "templates"


def test_a_build_does_not_import_the_network_stack(workspace: Path) -> None:
    script = (
        "import sys\n"
        "from newsletter.cli import main\n"
        f"sys.argv = ['newsletter', '--workspace', {str(workspace)!r}, 'build', 'sample']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('requests', 'urllib3', 'charset_normalizer') "
        "if m in sys.modules), 'premailer' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=os.environ
    )
    assert done.stdout.splitlines()[-1] == "[] True", done.stderr


def test_premailer_still_has_requests_when_it_uses_it(workspace: Path) -> None:
    from newsletter.build.inline import inline_css

    inline_css("<html><head></head><body><p>x</p></body></html>")
    import premailer.premailer
    import requests

    assert premailer.premailer.requests.get is requests.get
    assert sys.modules["requests"] is requests  # later imports get the real module


def test_compiled_templates_are_cached_and_an_edited_template_is_compiled_again(
    workspace: Path,
) -> None:
    cache = Path(os.environ["HOME"]) / ".cache" / "newsletter" / "templates"
    text = (PACKAGE_TEMPLATES / "newsletter.txt.j2").read_text(encoding="utf-8")
    template = workspace / "templates" / "newsletter.txt.j2"
    template.parent.mkdir()
    for mark in ("first edit", "second edit"):
        template.write_text(f"{mark}\n{text}", encoding="utf-8")
        outcome = run(workspace, "build", "sample")
        assert outcome.exit_code == 0, outcome.stderr
        built = (workspace / "build" / "sample" / "email.txt").read_text(encoding="utf-8")
        assert built.startswith(mark)
    assert any(cache.iterdir())
    assert (cache.stat().st_mode & 0o777) == 0o700


def test_the_report_page_templates_are_cached_too(workspace: Path) -> None:
    import jinja2

    cache = Path(os.environ["HOME"]) / ".cache" / "newsletter" / "templates"
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 0, outcome.stderr
    for name in ("report.html.j2", "_parts.html.j2"):
        filename = str(PACKAGE_TEMPLATES / "preview" / name)
        key = jinja2.BytecodeCache().get_cache_key(name, filename)
        assert (cache / f"__jinja2_{key}.cache").is_file(), name


def test_an_unwritable_cache_costs_only_the_compile(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 0, outcome.stderr
