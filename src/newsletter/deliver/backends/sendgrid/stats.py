"""SendGrid's statistics for one category (GET /v3/categories/stats), summed over days.

For accounts that post no events: every message carries its issue's slug as a category,
so the category's numbers are the issue's. They are SendGrid's own counts, per message and
per day; what they cannot tell (which link, which reader, machine opens) is said by the
caller.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from newsletter.deliver.backends.sendgrid import client
from newsletter.errors import DeliveryError, UserError

if TYPE_CHECKING:
    from newsletter.config import Settings

PATH = "categories/stats"
PERMISSION = "Stats: Read"
# SendGrid's documented metrics, in the order a reader wants them.
METRICS = (
    "requests",
    "processed",
    "delivered",
    "deferred",
    "bounces",
    "blocks",
    "bounce_drops",
    "invalid_emails",
    "opens",
    "unique_opens",
    "clicks",
    "unique_clicks",
    "spam_reports",
    "spam_report_drops",
    "unsubscribes",
    "unsubscribe_drops",
)


@dataclass(frozen=True)
class CategoryStats:
    category: str
    start_date: str
    end_date: str
    metrics: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "start_date": self.start_date,
            "end_date": self.end_date,
            **self.metrics,
        }


class StatsClient:
    """Reads category statistics through the official client; errors as one line."""

    def __init__(
        self,
        api_key: str,
        host: str,
        *,
        timeout: float = client.DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = api_key
        self.host = host.rstrip("/")
        self._client = client.api_client(api_key, self.host, timeout)
        self._clock = clock

    def category_stats(self, category: str, start: dt.date, end: dt.date) -> CategoryStats:
        """Every metric of `category` from `start` to `end` (UTC days), summed."""
        from python_http_client import exceptions

        query = {
            "categories": category,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "aggregated_by": "day",
        }
        try:
            response = self._client.client.categories.stats.get(query_params=query)
        except exceptions.HTTPError as exc:
            raise self._refused(category, int(exc.status_code), exc.body, exc.headers) from None
        except (OSError, ValueError, UnicodeError) as exc:
            raise DeliveryError(
                f"cannot read SendGrid's statistics ({client.network_reason(exc, self._key)})",
                where=self.host,
                fix="check the network and SENDGRID_API_HOST, then run the report again",
            ) from None
        metrics = summed(category, _json(response.body))
        if metrics is None:
            raise DeliveryError(
                f"the answer to GET /v3/{PATH} is not SendGrid's statistics (not a list of "
                "days with category metrics)",
                where=self.host,
                fix="check that SENDGRID_API_HOST is SendGrid's API (or remove it)",
            )
        return CategoryStats(category, start.isoformat(), end.isoformat(), metrics)

    def _refused(self, category: str, status: int, body: Any, headers: Any) -> Exception:
        text = client.masked(client.error_text(body), self._key) or "no details given"
        if status in (401, 403):
            return client.refused(
                status, text, "read statistics (/v3/categories/stats)", PERMISSION
            )
        if status == 404 or (status == 400 and "categor" in text.lower()):
            return UserError(
                f"SendGrid has no statistics for category {category!r} ({status}: {text})",
                fix="it was sent before every message carried its issue's category, or more "
                "than 13 months ago (SendGrid keeps 13 months); events from `newsletter serve` "
                "are the other source",
            )
        if status == 429:
            return DeliveryError(
                f"SendGrid's rate limit for statistics is reached (429: {text})",
                where=self.host,
                fix=f"try again {self._retry_in(headers)}",
            )
        return DeliveryError(
            f"SendGrid answered {status} to GET /v3/{PATH}: {text}",
            where=self.host,
            fix="try again later",
        )

    def _retry_in(self, headers: Any) -> str:
        """When the limit resets, from X-RateLimit-Reset (unix seconds)."""
        raw = headers.get("X-RateLimit-Reset") if headers is not None else None
        try:
            reset = float(str(raw))
        except (TypeError, ValueError):
            return "in a minute"
        seconds = max(0, int(reset - self._clock() + 0.999))
        at = dt.datetime.fromtimestamp(reset, dt.UTC).strftime("%H:%M:%S UTC")
        return f"in {seconds} s (at {at})"


def _json(body: bytes | str | None) -> Any:
    try:
        return json.loads(body or b"")
    except ValueError:  # not JSON (and UnicodeDecodeError is a ValueError)
        return None


def summed(category: str, payload: Any) -> dict[str, int] | None:
    """The metrics of `category` added over every day, or None if `payload` is not the
    documented shape: [{"date": ..., "stats": [{"name": ..., "metrics": {...}}]}]."""
    if not isinstance(payload, list):
        return None
    totals = dict.fromkeys(METRICS, 0)
    for day in payload:
        if not isinstance(day, dict) or not isinstance(day.get("stats"), list):
            return None
        for stat in day["stats"]:
            if not isinstance(stat, dict) or not isinstance(stat.get("metrics"), dict):
                return None
            if stat.get("name", category) != category:
                continue
            for name, value in stat["metrics"].items():
                if name in totals:
                    if type(value) is not int or value < 0:
                        return None
                    totals[name] += value
    return totals


def client_for(settings: Settings) -> StatsClient:
    key = client.api_key(settings, "; report --from-sendgrid needs Stats: Read as well")
    return StatsClient(key, settings.secrets.sendgrid_api_host)
