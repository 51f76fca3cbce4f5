"""The cron run's log: logs/newsletter.log, rotated, with every secret masked.

`run_log` sends the `newsletter` loggers to the file while it is open; `newsletter send
--due` (schedule.cron) holds it for the whole run.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.deliver.backends.sendgrid.client import masked
from newsletter.errors import UserError
from newsletter.schedule.store import WRITABLE_FIX

if TYPE_CHECKING:
    from newsletter.config import Settings

LOG_FILE = "newsletter.log"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 5


class _Redact(logging.Filter):
    """Blots secrets out of every record before it reaches the file."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self.secrets:  # raw, repr, JSON and escaped forms alike
            message = masked(message, secret)
        message = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", message)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self.secrets:
                record.exc_text = masked(record.exc_text, secret)
        return True


def _utc_time(seconds: float | None) -> time.struct_time:
    return time.gmtime(seconds)


@contextmanager
def run_log(settings: Settings) -> Iterator[Path]:
    """Log the `newsletter` loggers in full to logs/newsletter.log (rotated) while open."""
    directory = settings.path("logs")
    path = directory / LOG_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        raise UserError(
            f"cannot write the log ({exc.strerror or exc})", where=path, fix=WRITABLE_FIX
        ) from None
    formatter = logging.Formatter(
        "%(asctime)sZ %(levelname)s [%(process)d] %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = _utc_time
    handler.setFormatter(formatter)
    key = settings.secrets.sendgrid_api_key
    secrets = [key.get_secret_value()] if key else []
    for other in (settings.secrets.smtp_password, settings.secrets.unsubscribe_secret):
        if other is not None:
            secrets.append(other.get_secret_value())
    handler.addFilter(_Redact(secrets))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("newsletter")
    previous_level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    # At DEBUG the SendGrid client logs the Authorization header: never let it.
    logging.getLogger("python_http_client").setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
