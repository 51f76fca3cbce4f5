"""What every request of `newsletter serve` shares: settings, signers, clock, database."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from newsletter.audience.tokens import SealedTokens
from newsletter.audience.unsubscribe import UnsubscribeLinks, local_secret
from newsletter.config import Settings
from newsletter.db import PgConnection, connect_checked, open_database

if TYPE_CHECKING:
    from newsletter.db import Connection

# A web request waits at most this long for a send's write lock, then answers 503.
WEB_BUSY_TIMEOUT_MS = 10_000


@dataclass
class WebContext:
    settings: Settings
    clock: Callable[[], float] = time.time
    # True when the links are signed with NEWSLETTER_UNSUBSCRIBE_SECRET (as real sends are).
    secret_from_env: bool = False
    _secret: str = field(default="", repr=False)
    busy_timeout_ms: int = WEB_BUSY_TIMEOUT_MS
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _opened: list[Connection] = field(default_factory=list, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def load(
        cls,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        busy_timeout_ms: int = WEB_BUSY_TIMEOUT_MS,
    ) -> WebContext:
        """Check and migrate the database once, then serve from per-thread connections."""
        open_database(settings.database).close()
        configured = settings.secrets.unsubscribe_secret
        secret = configured.get_secret_value() if configured else local_secret(settings.workspace)
        return cls(settings, clock, configured is not None, secret, busy_timeout_ms)

    @property
    def links(self) -> UnsubscribeLinks:
        newsletter = self.settings.file.newsletter
        return UnsubscribeLinks(newsletter.unsubscribe_url, newsletter.list_name, self._secret)

    def sealed(self, purpose: str) -> SealedTokens:
        return SealedTokens(self._secret, f"{purpose}:{self.settings.file.newsletter.list_name}")

    @property
    def secret(self) -> str:
        return self._secret

    @property
    def base_path(self) -> str:
        """The path part of [web] base_url ("" or e.g. "/newsletter"): routes live under it."""
        base = self.settings.file.web.base_url
        return urlsplit(base).path.rstrip("/") if base else ""

    def db(self) -> Connection:
        """This worker thread's connection (opened on first use, closed by `close`)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if isinstance(conn, PgConnection) and not conn.alive():
            # The server restarted or the network dropped: a new session, not a 503 for
            # every request this thread serves from now on.
            self._forget(conn)
            conn = None
        if conn is None:
            conn = connect_checked(self.settings.database, busy_timeout_ms=self.busy_timeout_ms)
            self._local.conn = conn
            with self._guard:
                self._opened.append(conn)
        return conn

    def _forget(self, conn: Connection) -> None:
        with self._guard:
            if conn in self._opened:
                self._opened.remove(conn)
        self._local.conn = None
        with contextlib.suppress(Exception):
            conn.close()

    def close(self) -> None:
        """Close every connection the worker threads opened (at server shutdown)."""
        with self._guard:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
        self._local = threading.local()
