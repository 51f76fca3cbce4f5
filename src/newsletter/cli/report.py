"""Results: `issues` (every issue at a glance) and `report SLUG` (one issue, a click map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from newsletter.cli.app import app, info, settings, warn

if TYPE_CHECKING:
    from rich.console import Console


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


@app.command()
def issues(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every issue in the workspace, newest first: its state, recipients and results.

    States: draft, checks failing, scheduled for ..., sending, sent on ..., incomplete
    (unknown or failed recipients). Delivered, unique clicks and unsubscribes appear once
    SendGrid's events arrive (`newsletter serve`).

    Example:

        newsletter issues
    """
    from newsletter.db import open_database
    from newsletter.report.overview import overview

    workspace = settings(ctx)
    conn = open_database(workspace.database)
    try:
        lines = overview(workspace, conn)
    finally:
        conn.close()
    if as_json:
        info(json.dumps([line.as_dict() for line in lines], indent=2, ensure_ascii=False))
        return
    if not lines:
        info("no issues yet — start one with `newsletter new SLUG`")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False, header_style="bold")
    numbers = ("RECIPIENTS", "DELIVERED", "CLICKS", "UNSUBS")
    widths = {"SUBJECT": 40, "STATE": 44}
    for column in ("ISSUE", "DATE", "SUBJECT", "STATE", *numbers):
        table.add_column(
            column,
            justify="right" if column in numbers else "left",
            no_wrap=True,
            overflow="ellipsis",  # one line per issue, cut with … where it is too long
            max_width=widths.get(column),
        )
    for line in lines:
        table.add_row(
            line.slug,
            line.date or "",
            line.subject or "",
            line.state,
            f"{line.recipients:,}" if line.recipients else "",
            _percent(line.delivered_pct),
            _percent(line.unique_clicks_pct),
            str(line.unsubscribes) if line.unsubscribes else "",
        )
    Console(width=160).print(table)


@app.command()
def report(
    ctx: typer.Context,
    slug: str = typer.Argument(..., metavar="SLUG", help="The issue (a folder in issues/)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    html: Path | None = typer.Option(
        None, "--html", metavar="FILE", help="Also write a self-contained page with the click map."
    ),
    from_sendgrid: bool = typer.Option(
        False,
        "--from-sendgrid",
        help="Also read SendGrid's statistics of the issue's category (needs Stats: Read).",
    ),
) -> None:
    """What became of one sent issue: delivered, bounced, opened, clicked, per story.

    Rates are percentages of delivered (of sent, said so, when SendGrid posted fewer
    delivered events than people who opened or clicked). Machine opens (Apple Mail
    Privacy Protection, scanners) are counted apart from people's. Links are matched to
    stories by their address, as SendGrid reports it in its click events.

    Without events (an account that posts none), --from-sendgrid reads SendGrid's own
    statistics of the issue's category: requests, delivered, bounces, spam reports,
    unsubscribes, opens and clicks, summed per message since the first send.

    Examples:

        newsletter report 2026-12-01

        newsletter report 2026-12-01 --html results.html

        newsletter report 2026-12-01 --from-sendgrid
    """
    from newsletter.report.issue_report import load_report, write_report_page

    workspace = settings(ctx)
    loaded = load_report(workspace, slug, per_hour=html is not None, from_sendgrid=from_sendgrid)
    results = loaded.results
    if html is not None:
        write_report_page(workspace, loaded, html)
    data = results.as_dict()
    if loaded.sendgrid is not None:
        from newsletter.report.category_stats import stats_dict

        data["sendgrid_stats"] = stats_dict(loaded.sendgrid)
    if as_json:
        info(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        _print_report(data)
    if loaded.rehearsal_only:
        warn(
            "this issue went to the outbox only (a rehearsal): no reader got it, so no "
            "delivery, open or click will ever be reported"
        )
    elif not results.has_events and not from_sendgrid:
        warn(
            "no SendGrid events for this issue yet: only the ledger's count is shown (events "
            "arrive through `newsletter serve` at /webhooks/sendgrid; `--from-sendgrid` reads "
            "SendGrid's category statistics)"
        )
    if html is not None:
        info(f"wrote {html}")


def _print_report(data: dict[str, Any]) -> None:
    from rich.console import Console

    console = Console(width=120)
    console.print(f"[bold]{data['issue']}[/bold] (first sent {data['first_sent'] or '—'})")
    stats = data.get("sendgrid_stats")
    if stats is None or data["has_events"]:
        if stats is not None:
            console.print("[bold]from SendGrid's events (newsletter serve)[/bold]")
        _print_results(console, data)
    else:
        console.print(f"sent {data['sent']:,} (the ledger); no events from SendGrid")
    if stats is not None:
        _print_category_stats(console, stats)


def _print_category_stats(console: Console, stats: dict[str, Any]) -> None:
    from rich.table import Table

    from newsletter.report.category_stats import ROWS

    console.print(
        f"[bold]from SendGrid's category statistics[/bold] (category {stats['category']}, "
        f"{stats['start_date']} to {stats['end_date']})"
    )
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column()
    table.add_column(justify="right")
    table.add_column(justify="right")
    rates = stats["rates_of_delivered"]
    for label, name in ROWS:
        rate = _percent(rates[name]) if name in rates else ""
        table.add_row(label, f"{stats[name]:,}", rate)
    console.print(table)
    console.print(f"[dim]{stats['cannot_tell']}[/dim]")


def _print_results(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    rates = data["rates"]
    summary = Table(box=None, pad_edge=False, show_header=False)
    summary.add_column()
    summary.add_column(justify="right")
    summary.add_column(justify="right")
    rows = [
        ("sent", data["sent"], None),
        ("delivered", data["delivered"], data["delivered_of_sent"]),
        ("deferred", data["deferred"], rates["deferred"]),
        ("bounced (hard)", data["bounced_hard"], rates["bounced_hard"]),
        ("bounced (soft)", data["bounced_soft"], rates["bounced_soft"]),
        ("dropped", data["dropped"], rates["dropped"]),
        ("spam reports", data["spam_reports"], rates["spam_reports"]),
        ("unsubscribes", data["unsubscribed"], rates["unsubscribes"]),
        ("unique opens (people)", data["opens_unique"], rates["opens_unique"]),
        ("machine opens only", data["opens_machine_only"], rates["opens_machine_only"]),
        ("unique clicks", data["clicks_unique"], rates["clicks_unique"]),
        ("click-to-open", None, data["click_to_open"]),
    ]
    for label, count, rate in rows:
        summary.add_row(label, "" if count is None else f"{count:,}", _percent(rate))
    console.print(summary)
    if data["has_events"] and data["rates_of"] == "sent":
        console.print(
            "rates are of sent: SendGrid posted fewer 'delivered' events than people who "
            "opened or clicked (turn on every event kind in its Event Webhook settings)"
        )
    if data["unsubscribes"]:
        ways = ", ".join(f"{how} {n}" for how, n in sorted(data["unsubscribes"].items()))
        console.print(f"unsubscribes by way: {ways}")
    console.print(f"[dim]{data['machine_open_caveat']}[/dim]")
    stories = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("STORY", "SECTION", "UNIQUE", "TOTAL"):
        stories.add_column(column, justify="right" if column in {"UNIQUE", "TOTAL"} else "left")
    for item in sorted(data["stories"], key=lambda i: -i["unique"]):
        stories.add_row(
            item["title"][:60], item["section"], f"{item['unique']:,}", f"{item['total']:,}"
        )
    for item in data["other_links"]:
        stories.add_row(
            f"({item['kind']}) {item['url'][:50]}", "", f"{item['unique']:,}", f"{item['total']:,}"
        )
    console.print(stories)
