"""`newsletter add`: collect articles and teasers into an issue."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings, warn

if TYPE_CHECKING:
    from newsletter.collect.merge import AddReport, SentIssue


def _parse_date(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD") from None


@app.command()
def add(
    ctx: typer.Context,
    slug: str = typer.Argument(
        ..., metavar="SLUG", help="The issue to add to (a folder in issues/)."
    ),
    sources: list[str] = typer.Argument(
        ...,
        metavar="SOURCE...",
        help="Article URLs, saved .html pages, RSS/Atom feeds (URL or file), "
        "Markdown files with front matter, or .txt page dumps.",
        show_default=False,
    ),
    section: str | None = typer.Option(
        None,
        "--section",
        "-s",
        metavar="NAME",
        help="Section to append to (created if missing). "
        "Default: the source's own grouping, else the issue's last section.",
    ),
    limit: int | None = typer.Option(
        None,
        "--limit",
        "-n",
        metavar="N",
        min=1,
        help="At most N articles per source (feeds: newest N; default 10).",
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        metavar="DATE",
        help="Feeds: only items published on or after DATE (YYYY-MM-DD).",
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        metavar="ORIGINAL",
        help="The original address of one source: a saved page (wins over its canonical "
        "link), a feed file (for relative links) or a text dump (its headline story).",
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show what would be added; change nothing."
    ),
    timeout: float | None = typer.Option(
        None,
        "--timeout",
        metavar="SECONDS",
        min=0.1,
        envvar="NEWSLETTER_HTTP_TIMEOUT",
        help="Seconds to wait for a web server (default 15).",
    ),
    recent: int = typer.Option(
        5,
        "--recent",
        metavar="N",
        min=0,
        help="Warn about articles already sent in the last N issues (0: off).",
    ),
) -> None:
    """Collect articles and teasers into issues/SLUG/issue.yaml (appended, duplicates skipped).

    Example:  newsletter add 2026-12-01 https://example.org/story saved.html --section Latest
    """
    from newsletter.collect.merge import add_to_issue, recently_sent
    from newsletter.collect.readers.base import ReadOptions
    from newsletter.errors import ExitCode, UserError
    from newsletter.issue.model import ISSUE_FILE, check_slug

    if url is not None and len(sources) > 1:
        raise UserError("--url names the address of one source", fix="give one SOURCE with --url")
    workspace = settings(ctx)
    issue_path = workspace.issue_dir(check_slug(slug)) / ISSUE_FILE
    options = ReadOptions(url=url, limit=limit, since=_parse_date(since), timeout=timeout)

    def sent() -> list[SentIssue]:
        from newsletter.db import exists, open_database

        if not exists(workspace.database):
            return []  # nothing was ever sent from this workspace
        from newsletter.deliver.ledger import Ledger

        conn = open_database(workspace.database)
        try:
            slugs = [s for s in Ledger(conn).sent_issues(recent + 1) if s != slug][:recent]
        finally:
            conn.close()
        return recently_sent(workspace.path("issues"), slugs)

    report = add_to_issue(
        issue_path,
        sources,
        options=options,
        section=section,
        dry_run=dry_run,
        sent=sent if recent else None,
    )
    _print(report, _shown(issue_path, workspace.workspace), dry_run)
    if report.failures:
        raise typer.Exit(ExitCode.USER_ERROR)


def _shown(path: Path, root: Path) -> Path:
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def _print(report: AddReport, shown: Path, dry_run: bool) -> None:
    verb = "would add" if dry_run else "added"
    for item in report.added:
        info(f"{verb} to '{item.section}': {item.article.title}")
    for skipped in report.skipped:
        info(f"skipped ({skipped.reason}): {skipped.article.title}")
    for note in report.notes:
        info(f"note: {note}")
    for repeat in report.repeats:
        warn(repeat)
    for failure in report.failures:
        typer.secho(f"error: {failure.line()}", fg=typer.colors.RED, err=True)
    count = f"{len(report.added)} added, {len(report.skipped)} skipped"
    if dry_run:
        info(f"dry run: {shown} not changed ({count.replace('added', 'to add')})")
    elif report.written:
        info(f"{shown}: {count}")
    else:
        info(f"{shown} not changed ({count})")
