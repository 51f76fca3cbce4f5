"""Whether an issue could go out when cron reaches it, asked when it is scheduled.

Scheduling an issue that fails its checks, or a workspace that cannot send, would only
move the error to every cron run after the issue falls due.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from newsletter.config import Settings


def check_backend(settings: Settings) -> None:
    """Cron must not quietly fall back to writing .eml files when the key is missing."""
    backend = (settings.file.delivery.backend or "auto").lower()
    if backend == "auto" and settings.secrets.sendgrid_api_key is None:
        raise ConfigError(
            "SENDGRID_API_KEY is not set, so `auto` would only write .eml files to the outbox",
            where=settings.workspace / ".env",
            fix='add the key to .env, or set [delivery] backend = "outbox" if that is meant',
        )


def check_ready(settings: Settings, slug: str) -> None:
    """Refuse, as a send would, what would make the scheduled send fail; nothing is written."""
    from newsletter.build.output import make_build
    from newsletter.deliver.backends import resolve_name
    from newsletter.deliver.preflight import (
        refuse_failing_checks,
        refuse_placeholders,
        unsubscribe_links,
    )

    check_backend(settings)
    backend = resolve_name(settings)
    build = make_build(settings, slug)
    refuse_failing_checks(
        build,
        f"fix them (see `newsletter check {slug}`) and schedule it again; nothing was scheduled",
    )
    refuse_placeholders(settings, build, backend)
    unsubscribe_links(settings, backend, [])
