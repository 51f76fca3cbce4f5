"""Due issues whose send failed: reported by the first cron run that met the error.

Later runs try the issue again but stay quiet while the error is the same, so cron does
not mail the same failure every few minutes; `schedule --list` shows it as failed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from newsletter.db import transaction

if TYPE_CHECKING:
    from newsletter.db import Connection


def note_failure(conn: Connection, slug: str, error: str, now: dt.datetime) -> bool:
    """Record that a due issue failed with `error`; False if the last run said the same."""
    with transaction(conn):
        row = conn.execute(
            "SELECT error FROM schedule_failures WHERE issue = ?", (slug,)
        ).fetchone()
        conn.execute(
            "INSERT INTO schedule_failures (issue, error, first_failed, last_failed) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (issue) DO UPDATE SET "
            "last_failed = excluded.last_failed, "
            "first_failed = CASE WHEN error = excluded.error THEN first_failed "
            "ELSE excluded.first_failed END, error = excluded.error",
            (slug, error, now.isoformat(), now.isoformat()),
        )
    return row is None or row[0] != error


def clear_failure(conn: Connection, slug: str) -> None:
    with transaction(conn):
        conn.execute("DELETE FROM schedule_failures WHERE issue = ?", (slug,))


def recorded_failures(conn: Connection) -> dict[str, tuple[str, dt.datetime]]:
    rows = conn.execute("SELECT issue, error, first_failed FROM schedule_failures").fetchall()
    return {slug: (error, dt.datetime.fromisoformat(since)) for slug, error, since in rows}
