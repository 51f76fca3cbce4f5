"""The preview command: a live local preview, or screenshots."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from newsletter.cli.app import app, info, settings, warn

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.preview.server import Results

IMAGE_CACHE = ".image-cache"


@app.command()
def preview(
    ctx: typer.Context,
    slug: str = typer.Argument(
        ..., metavar="SLUG", help="The issue to preview (a folder in issues/)."
    ),
    port: int = typer.Option(
        8000,
        "--port",
        "-p",
        metavar="PORT",
        min=0,
        max=65535,
        help="Port on 127.0.0.1; the next free one if taken; 0 = any.",
    ),
    open_browser: bool = typer.Option(False, "--open", help="Open the preview in a web browser."),
    screenshot: Path | None = typer.Option(
        None,
        "--screenshot",
        metavar="DIR",
        help="Write PNGs at 600px and 375px, light and dark, into DIR and exit (headless "
        "Chromium).",
    ),
    offline: bool = typer.Option(
        False,
        "--offline",
        help="Fetch no image: use the cached ones, grey placeholders for the rest.",
    ),
) -> None:
    """Build, then serve a live preview on 127.0.0.1 that rebuilds and reloads when you save.

    The page shows the email at desktop and mobile widths, in emulated dark mode, the
    plain-text part, the HTML source, the headers, the size against Gmail's clip limit and
    the checks. Every build also writes build/SLUG/preview.html, which needs no server.

    Examples:

        newsletter preview sample --open

        newsletter preview sample --screenshot shots/

    The preview and the screenshots show the issue's images from build/.image-cache/ (each
    fetched once from its address; a grey placeholder of its size when offline or
    unreachable).
    """
    if screenshot is not None:
        if open_browser:
            raise typer.BadParameter("--open needs the server; leave it out with --screenshot")
        _screenshots(ctx, slug, screenshot, offline)
        return
    _serve(ctx, slug, port, open_browser, offline)


def _results(workspace: Settings, slug: str) -> Results:
    """The issue's results page (`report --html`), linked from the preview once it has some."""
    from newsletter.preview.server import Results
    from newsletter.report.issue_report import has_results, results_page

    return Results(
        available=lambda: has_results(workspace, slug),
        page=lambda: results_page(workspace, slug),
    )


def _serve(ctx: typer.Context, slug: str, port: int, open_browser: bool, offline: bool) -> None:
    from newsletter.preview.images import ImageCache, fetch_image
    from newsletter.preview.server import PreviewServer
    from newsletter.preview.session import PreviewSession

    workspace = settings(ctx)
    session = PreviewSession(workspace, slug, say=info, warn=warn)
    session.start()
    cache = ImageCache(
        workspace.build_dir(slug).parent / IMAGE_CACHE, None if offline else fetch_image
    )
    server = PreviewServer(session, port, cache, _results(workspace, slug))
    if port and server.port != port:
        warn(f"port {port} is in use; using {server.port}")
    folders = (workspace.issue_dir(slug), workspace.path("templates"))
    watched = " or ".join(f"{_shown(folder, workspace.workspace)}/" for folder in folders)
    info(
        f"previewing {slug} at {server.url} — rebuilds when {watched} or newsletter.toml "
        "change; Ctrl-C stops"
    )
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        info("preview stopped")


def _shown(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path


def _screenshots(ctx: typer.Context, slug: str, directory: Path, offline: bool) -> None:
    from newsletter.build.output import PREVIEW, make_build, write_build
    from newsletter.preview.images import ImageCache, fetch_image
    from newsletter.preview.screenshots import find_chromium, take_screenshots

    chromium = find_chromium()  # before building: a missing browser should fail fast
    workspace = settings(ctx)
    build = make_build(workspace, slug)
    report = write_build(workspace, build) / PREVIEW
    info(f"wrote {_shown(report, workspace.workspace)}")
    cache = ImageCache(
        workspace.build_dir(slug).parent / IMAGE_CACHE, None if offline else fetch_image
    )
    for path in take_screenshots(build, directory, chromium, cache):
        info(f"wrote {path}")
    if cache.fetched:
        shown = _shown(cache.directory, workspace.workspace)
        info(f"fetched {len(cache.fetched)} image(s) into {shown}/")
    errors = sum(finding.level == "error" for finding in build.findings)
    if errors:
        warn(f"{errors} check error(s): see the report or run `newsletter check {slug}`")
