"""What the editor asked of one send (`newsletter send` options, or the cron hand-over)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SendOptions:
    backend: str | None = None
    resend: bool = False
    resend_unknown: bool = False
    # Also those who subscribed after the recipients were taken and never got it.
    new_subscribers: bool = False
    sync: bool = True
    # `send --dry-run`: nothing is kept, so a read-only workspace will do.
    dry_run: bool = False
    # A scheduled hand-over: SendGrid holds every request until send_at, under batch_id.
    send_at: int | None = None
    batch_id: str | None = None
