"""Build an issue: load, render, check, and write build/<slug>/ atomically."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from newsletter.build.checks import BuiltEmail, run_checks
from newsletter.build.render import render_issue, template_environment
from newsletter.build.result import Build
from newsletter.config import Settings
from newsletter.errors import UserError
from newsletter.issue.file import load_issue
from newsletter.issue.model import ISSUE_FILE, check_slug

REPORT = "report.json"
PREVIEW = "preview.html"


def make_build(settings: Settings, slug: str) -> Build:
    """Render and check in memory; nothing is written."""
    check_slug(slug)
    issue = load_issue(settings.issue_dir(slug) / ISSUE_FILE)
    rendered = render_issue(issue, slug, settings)
    track = template_environment(settings, slug).filters["track"]
    tracked = tuple(dict.fromkeys(track(article.url) for article in issue.articles()))
    built = BuiltEmail(rendered.email_html, rendered.text, issue, tracked, rendered.mjml)
    return Build(slug, issue, rendered, run_checks(built))


def write_build(settings: Settings, build: Build) -> Path:
    """Replace build/<slug>/ as a whole: readers see the old build or the new one, never a mix."""
    from newsletter.build.report_page import render_preview_report  # `check` writes no page

    target = settings.build_dir(build.slug)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{build.slug}.", dir=target.parent))
    except OSError as exc:
        raise UserError(
            f"cannot write the build ({exc.strerror})",
            where=target.parent,
            fix="check that the workspace is writable by this user",
        ) from None
    try:
        os.chmod(staging, 0o755)  # mkdtemp makes it private; a build is for the whole team
        for name, content in build.files().items():
            (staging / name).write_text(content, encoding="utf-8", newline="\n")
        report = json.dumps(build.report(), indent=2, ensure_ascii=False, sort_keys=True)
        (staging / REPORT).write_text(report + "\n", encoding="utf-8")
        (staging / PREVIEW).write_text(render_preview_report(settings, build), encoding="utf-8")
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _swap_in(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, retired / "build")
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def read_report(settings: Settings, slug: str) -> dict[str, Any]:
    path = settings.build_dir(slug) / REPORT
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"issue {slug!r} has not been built", where=path, fix=f"run `newsletter build {slug}`"
        ) from None
    return data
