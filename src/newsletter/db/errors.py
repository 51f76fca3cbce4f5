"""The database's failures a user can act on, as one line each."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from newsletter.db.target import PostgresTarget, Target
from newsletter.errors import UserError


class ReadOnlyDatabase(UserError):
    def __init__(self, where: Path | PostgresTarget | str | None = None) -> None:
        super().__init__(
            "the workspace database is read-only and this command writes to it",
            where=str(where) if isinstance(where, PostgresTarget) else where,
            fix="run it where the database and its folder are writable "
            "(commands that only read, such as `status`, work as they are)",
        )


class DatabaseDamaged(UserError):
    def __init__(self, path: Path | None, detail: str) -> None:
        name = path.name if path else "newsletter.db"
        detail = " ".join(detail.replace("*** in database main ***", "").split())
        super().__init__(
            f"the workspace database is damaged ({detail[:120]})",
            where=path,
            fix=f"restore {name} from a backup, or salvage it with "
            f"`sqlite3 {name} .recover | sqlite3 recovered.db` and point "
            "[delivery] database at the result",
        )


def explain(error: Exception) -> UserError | None:
    """The one-line form of a database failure the core did not expect, where one is known."""
    text = str(error)
    if isinstance(error, sqlite3.Error):
        if "readonly" in text:
            return ReadOnlyDatabase()
        # A damaged record can pass quick_check and only fail when its text is read.
        if "malformed" in text or "not a database" in text or "Could not decode" in text:
            return DatabaseDamaged(None, text)
        return None
    # The server's first line only: its DETAIL may quote a row (a subscriber's address).
    diagnostic = getattr(error, "diag", None)
    primary = getattr(diagnostic, "message_primary", None) or text.split("\n", 1)[0]
    first = " ".join(primary.split())[:160]
    return UserError(
        f"the PostgreSQL server refused a query ({first})",
        fix="check the server's log; if the schema was changed by hand, "
        "run `newsletter db migrate`",
    )


def engine_errors(target: Target | None = None) -> tuple[type[Exception], ...]:
    """The exception classes of every engine in use, for last-resort handlers; with the
    workspace's `target`, also before its first connection (a server's handlers)."""
    import sys

    errors: tuple[type[Exception], ...] = (sqlite3.Error,)
    if isinstance(target, PostgresTarget):
        import psycopg  # noqa: F401 - loaded for its classes
    psycopg_module = sys.modules.get("psycopg")  # loaded only when a PostgreSQL URL is in use
    if psycopg_module is not None:
        errors += (psycopg_module.Error,)
    return errors
