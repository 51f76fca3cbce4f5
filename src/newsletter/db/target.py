"""Where the workspace database lives: a SQLite file, or a PostgreSQL server named by a URL.

A PostgreSQL URL may carry a password, so it is held as a secret and shown only in its
redacted form (`postgresql://editor@db.example.org:5432/newsletter`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter.errors import ConfigError

POSTGRES_SCHEMES = ("postgresql", "postgres")
URL_FIX = (
    "write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE "
    "or sqlite:///PATH (percent-encode @ : / in the password)"
)


@dataclass(frozen=True)
class PostgresTarget:
    """A PostgreSQL database; `url` is secret (it may hold a password): never print it."""

    url: str
    shown: str  # the URL without its password, for messages
    name: str = "DATABASE_URL"  # where the URL was given, for the fixes messages suggest
    user: str = ""

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"PostgresTarget({self.shown!r})"

    @property
    def password(self) -> str | None:
        return unquote(urlsplit(self.url).password or "") or None


Target = Path | PostgresTarget


def parse_target(
    url: str, *, workspace: Path, where: str | Path, name: str = "DATABASE_URL"
) -> Target:
    """DATABASE_URL as a target: `sqlite:///path` (relative to the workspace) or PostgreSQL.

    `name`: what the messages call the URL (an option, such as `db copy --to`, gives its own).
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"{name} is not a URL (no scheme:// at its start)", where=where, fix=URL_FIX
        )
    scheme = scheme.lower()
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if not path:
            raise ConfigError(f"{name} names no SQLite file", where=where, fix=URL_FIX)
        return workspace / Path(unquote(path).split("?", 1)[0])
    if scheme not in POSTGRES_SCHEMES and not scheme.startswith("postgresql+"):
        raise ConfigError(
            f"{name} has the scheme {scheme[:20]!r}, which newsletter cannot use",
            where=where,
            fix=URL_FIX,
        )
    authority = rest.split("/", 1)[0].split("?", 1)[0]
    if authority.count("@") > 1:
        # Read as it stands, the part after the first @ would go out as the host name.
        raise ConfigError(
            f"{name} has more than one @ before its host",
            where=where,
            fix="percent-encode an @ in the user or password as %40",
        )
    try:
        parts = urlsplit("postgresql://" + rest)
        port = parts.port
    except ValueError:
        raise ConfigError(
            f"{name} is not a valid PostgreSQL URL (its host or port cannot be read)",
            where=where,
            fix=URL_FIX,
        ) from None
    user = unquote(parts.username or "")
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    database = parts.path.lstrip("/")
    shown = "postgresql://" + (f"{user}@" if user else "") + host + (f":{port}" if port else "")
    shown += f"/{database}" if database else ""
    return PostgresTarget(url="postgresql://" + rest, shown=shown, name=name, user=user)
