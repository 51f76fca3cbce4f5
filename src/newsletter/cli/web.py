"""The reader's side: `serve` (unsubscribe, signup, archive, webhook) and `archive DIR`."""

from __future__ import annotations

from pathlib import Path

import typer

from newsletter.cli.app import app, info, settings, warn


@app.command()
def serve(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1", "--host", metavar="HOST", help="Address to listen on (0.0.0.0: all)."
    ),
    port: int = typer.Option(
        8080,
        "--port",
        "-p",
        metavar="PORT",
        min=0,
        max=65535,
        help="Port to listen on (0: any free one).",
    ),
) -> None:
    """Serve the reader's side behind your reverse proxy at [web] base_url.

    /unsubscribe (a page with one button, and RFC 8058 one-click POSTs), /subscribe (double
    opt-in), /archive/ (every issue that went out, with an Atom feed), /webhooks/sendgrid
    (SendGrid's signed event webhook) and /healthz. It shares the workspace database with
    `send` and cron. Also runs as `uvicorn newsletter.web:app` from the workspace folder.

    Examples:

        newsletter serve

        newsletter serve --host 0.0.0.0 --port 8080
    """
    from newsletter.web.server import run

    workspace = settings(ctx)
    secrets = workspace.secrets
    if secrets.unsubscribe_secret is None:
        warn(
            "NEWSLETTER_UNSUBSCRIBE_SECRET is not set: only links of outbox rehearsals made "
            "in this workspace verify; set it, the same as where `send` runs, so the links "
            "of real sends (and of other machines' rehearsals) do"
        )
    if secrets.sendgrid_webhook_public_key is None:
        warn("SENDGRID_WEBHOOK_PUBLIC_KEY is not set: /webhooks/sendgrid refuses every post")
    run(workspace, host, port, info)


@app.command()
def archive(
    ctx: typer.Context,
    directory: Path = typer.Argument(
        ...,
        metavar="DIR",
        help="Folder for the static archive: new, empty, or written by this before.",
    ),
) -> None:
    """Write the archive of every issue that went out as a static site into DIR.

    DIR gets index.html (newest first), SLUG/index.html (each issue's web version) and
    feed.xml (Atom), the same pages `newsletter serve` shows at /archive/.

    Example:

        newsletter archive public/archive
    """
    from newsletter.web.archive_site import write_archive

    count = write_archive(settings(ctx), directory)
    noun = "issue" if count == 1 else "issues"
    info(f"wrote the archive of {count} {noun} to {directory}/ (index.html, feed.xml)")
