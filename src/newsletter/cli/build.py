"""Commands that make an issue: init, new, build, check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings, warn
from newsletter.errors import ExitCode

if TYPE_CHECKING:
    from newsletter.build.checks import Finding


@app.command()
def init(
    directory: Path = typer.Argument(
        Path("."), metavar="DIR", help="Where to create the workspace."
    ),
) -> None:
    """Scaffold a workspace: newsletter.toml, issues/, an empty templates/, .env.example.

    Example:  newsletter init my-newsletter
    """
    from newsletter.workspace import init_workspace

    created = init_workspace(directory)
    for path in created:
        info(f"created {path}")
    info(f"next: cd {directory} && newsletter new first-issue --subject 'Hello'")


@app.command()
def new(
    ctx: typer.Context,
    slug: str = typer.Argument(
        ..., metavar="SLUG", help="Short name of the issue, e.g. 2026-12-01."
    ),
    subject: str = typer.Option("", "--subject", metavar="TEXT", help="The email subject."),
) -> None:
    """Start issues/SLUG/issue.yaml from a commented skeleton.

    Example:  newsletter new 2026-12-01 --subject "This week in Albania"
    """
    from newsletter.workspace import new_issue

    path = new_issue(settings(ctx), slug, subject)
    info(f"created {path} — add stories with `newsletter add {slug} URL...`, then build")


@app.command()
def build(
    ctx: typer.Context,
    slug: str = typer.Argument(
        ..., metavar="SLUG", help="The issue to build (a folder in issues/)."
    ),
) -> None:
    """Render email.html, email.txt, web.html and report.json into build/SLUG/; run the checks.

    Example:  newsletter build sample
    """
    from newsletter.build.output import make_build, write_build

    workspace = settings(ctx)
    result = make_build(workspace, slug)
    target = write_build(workspace, result)
    _print_findings(result.findings)
    sizes = result.report()["files"]
    info(
        f"built {target.relative_to(workspace.workspace)}/: "
        + ", ".join(f"{name} {meta['bytes']:,} B" for name, meta in sizes.items())
    )
    if not result.ok:
        raise typer.Exit(ExitCode.USER_ERROR)


@app.command()
def check(
    ctx: typer.Context,
    slug: str = typer.Argument(..., metavar="SLUG", help="The issue to check."),
) -> None:
    """Run the quality checks without writing anything; exit 1 on errors.

    Example:  newsletter check sample
    """
    from newsletter.build.output import make_build

    result = make_build(settings(ctx), slug)
    _print_findings(result.findings)
    if not result.ok:
        raise typer.Exit(ExitCode.USER_ERROR)
    info(f"{slug}: all checks passed" + (" (with warnings)" if result.findings else ""))


def _print_findings(findings: Sequence[Finding]) -> None:
    for finding in findings:
        if finding.level == "error":
            typer.secho(f"error: [{finding.code}] {finding.message}", fg=typer.colors.RED, err=True)
        else:
            warn(f"[{finding.code}] {finding.message}")
