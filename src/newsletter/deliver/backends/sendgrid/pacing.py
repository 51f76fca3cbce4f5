"""One pace for every mail/send request in flight.

SendGrid says when to slow down in its rate-limit headers: a 429 (or an answer with
`X-RateLimit-Remaining: 0`) carries `X-RateLimit-Reset`, the epoch second when requests are
taken again. The hold applies to the whole sender, not to the one request that was told:
every request in flight waits until then before it (or its retry) goes out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class SharedRateLimit:
    """The time (on `clock`) before which no request may leave; safe across threads."""

    def __init__(self, clock: Callable[[], float], max_wait: float) -> None:
        self._clock = clock
        self._max_wait = max_wait
        self._lock = threading.Lock()
        self._until = 0.0

    @property
    def until(self) -> float:
        with self._lock:
            return self._until

    def hold(self, headers: Any, *, refused: bool) -> float:
        """Hold every request until the reset the headers name; return when the hold now
        in force ends (a later one told of before is kept).

        A 429 (`refused`) without a usable reset holds for a second; an accepted request
        holds only when it says that no request remains in this window.
        """
        now = self._clock()
        remaining = _header(headers, "X-RateLimit-Remaining")
        if not refused and remaining != "0":
            return now
        try:
            wait = float(_header(headers, "X-RateLimit-Reset") or "") - now
        except ValueError:
            wait = 1.0 if refused else 0.0
        until = now + min(max(wait, 0.0), self._max_wait)
        with self._lock:
            self._until = max(self._until, until)
            return self._until

    def pause(self, waited_until: float) -> float:
        """Seconds to wait before the next request, unless this caller already waited out
        the hold now in force (it was the one told, and slept through its own retry)."""
        with self._lock:
            until = self._until
        if until <= waited_until:
            return 0.0
        return max(until - self._clock(), 0.0)


def _header(headers: Any, name: str) -> str | None:
    # http.client's header objects: case-insensitive `get`, None when absent.
    value = headers.get(name) if headers is not None else None
    return None if value is None else str(value).strip()
