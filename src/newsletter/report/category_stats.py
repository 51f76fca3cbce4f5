"""`report --from-sendgrid`: SendGrid's own statistics of the issue's category.

For accounts that post no events to `newsletter serve`. The numbers are SendGrid's sums
per message and day; what they cannot give is said beside them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.deliver.backends.sendgrid.stats import CategoryStats

CANNOT_TELL = (
    "category statistics cannot give clicks per link or story, machine opens (Apple Mail "
    "Privacy Protection) apart from people's, who opened or clicked beyond SendGrid's own "
    "unique counts, or unsubscribes by way"
)
# Shown in the table, in this order: (label, SendGrid's metric).
ROWS = (
    ("requests", "requests"),
    ("delivered", "delivered"),
    ("deferred", "deferred"),
    ("bounces", "bounces"),
    ("blocks", "blocks"),
    ("dropped (bounced before)", "bounce_drops"),
    ("spam reports", "spam_reports"),
    ("unsubscribes", "unsubscribes"),
    ("opens", "opens"),
    ("unique opens", "unique_opens"),
    ("clicks", "clicks"),
    ("unique clicks", "unique_clicks"),
)
RATED = ("bounces", "blocks", "spam_reports", "unsubscribes", "unique_opens", "unique_clicks")


def stats_window(first_sent: str, today: dt.date) -> tuple[dt.date, dt.date]:
    """From the day before the first send (SendGrid's days may be in the account's time
    zone, behind UTC) to today, never before the start."""
    sent = dt.datetime.fromisoformat(first_sent)
    start = (sent.astimezone(dt.UTC) if sent.tzinfo else sent).date() - dt.timedelta(days=1)
    return start, max(start, today)


def read_category_stats(settings: Settings, slug: str, first_sent: str | None) -> CategoryStats:
    """The issue's category statistics (the network and the clock are touched here only)."""
    from newsletter.deliver.backends.sendgrid.stats import client_for

    now = dt.datetime.now(dt.UTC)
    start, end = stats_window(first_sent or now.isoformat(), now.date())
    return client_for(settings).category_stats(slug, start, end)


def stats_dict(stats: CategoryStats) -> dict[str, Any]:
    """The statistics as `--json` gives them, with rates of delivered and what is missing."""
    data = stats.as_dict()
    delivered = stats.metrics["delivered"]
    data["rates_of_delivered"] = {
        name: round(100 * stats.metrics[name] / delivered, 1) if delivered else None
        for name in RATED
    }
    data["cannot_tell"] = CANNOT_TELL
    return data
