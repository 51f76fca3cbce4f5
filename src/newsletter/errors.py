"""The project's exception hierarchy; the CLI turns these into one red line and an exit code."""

from __future__ import annotations

from pathlib import Path


class NewsletterError(Exception):
    """Base class: a failure the user can understand and act on (no traceback shown)."""

    exit_code = 1

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


class DeliveryError(NewsletterError):
    """Sending failed in a way that is not the user's input. Exit code 3."""

    exit_code = 3


class AuthError(DeliveryError):
    """The delivery service refused the credentials (401/403). Exit code 4."""

    exit_code = 4


class LockBusy(NewsletterError):
    """Another run holds the workspace lock. Exit code 5."""

    exit_code = 5
