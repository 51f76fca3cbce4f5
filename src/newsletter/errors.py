"""The exit codes and the exceptions; the CLI turns an exception into a red line and its code."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Every exit code of `newsletter`, in one list: cron and systemd act on them.

    The values never change. `newsletter send --due` has its own words for some of them
    (the aliases below), as its run log and its tests name them.
    """

    OK = 0  # done; `send --due`: every due issue went out in full (or went to SendGrid)
    USER_ERROR = 1  # bad input, a failed check, settings/key/workspace wrong
    USAGE = 2  # the command line itself is wrong (click's usage errors)
    DELIVERY_FAILED = 3  # sending failed; `send --due`: due, and nothing of it went out
    AUTH_REFUSED = 4  # the delivery service refused the credentials: nothing went out
    LOCK_BUSY = 5  # another run holds the lock: this one did nothing
    PARTLY_FAILED = 6  # `send --due`: some went out, some did not (failed, unknown, stopped)
    NOTHING_DUE = 7  # `send --due`: nothing to do, nothing said

    # `newsletter send --due`'s names for the same codes
    SENT = 0
    CONFIG = 1
    FAILED = 3
    AUTH = 4


class NewsletterError(Exception):
    """Base class: a failure the user can understand and act on (no traceback shown)."""

    exit_code: int = ExitCode.USER_ERROR

    def __init__(self, what: str, *, where: str | Path | None = None, fix: str | None = None):
        self.what = what
        self.where = str(where) if where is not None else None
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        if self.fix:
            text += f" — {self.fix}"
        return text


class UserError(NewsletterError):
    """Bad input: a file, an option or a setting. Exit code 1."""


class ConfigError(UserError):
    """newsletter.toml or the environment is wrong or incomplete."""


class IssueFileError(UserError):
    """issue.yaml is malformed or invalid."""


class TemplateError(UserError):
    """A template is missing, fails to render or produces invalid MJML."""


class ChecksFailed(UserError):
    """The built email fails the quality bar."""


class SourceError(UserError):
    """A source given to `add` could not be read."""


class UsageError(NewsletterError):
    """The command line is wrong in a way only the core can tell. Exit code 2.

    The CLI turns it into click's usage error (the usage line, then "Error: ...").
    """

    exit_code = ExitCode.USAGE


class DeliveryError(NewsletterError):
    """Sending failed in a way that is not the user's input. Exit code 3."""

    exit_code = ExitCode.DELIVERY_FAILED


class AuthError(DeliveryError):
    """The delivery service refused the credentials (401/403). Exit code 4."""

    exit_code = ExitCode.AUTH_REFUSED


class LockBusy(NewsletterError):
    """Another run holds the workspace lock. Exit code 5."""

    exit_code = ExitCode.LOCK_BUSY
