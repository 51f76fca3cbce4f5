"""A sender's key on PostgreSQL, where several senders may work on one issue at once.

Each sender takes a random key as a session advisory lock and writes it on the batches it
claims. The server drops the lock when the sender's session ends — also when its process
is SIGKILLed or its host dies — so a batch left `sending` whose key can be locked by
someone else belongs to a sender that is gone: `recover` may make it `unknown`; a batch
whose key is still held belongs to a sender that is still waiting for its answer.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from newsletter.db import PgConnection
from newsletter.db.postgres import SENDER_CLASS


class Claimer:
    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn
        self._key: int | None = None

    @property
    def key(self) -> int:
        """This sender's key, locked on first use and held until the connection closes."""
        while self._key is None:
            candidate = secrets.randbelow(2**31 - 2) + 1
            if self.conn.try_lock(SENDER_CLASS, candidate):
                self._key = candidate
        return self._key

    def gone(self, issue_id: int) -> list[int]:
        """The keys on the issue's `sending` batches whose senders are gone (or are this
        one), locked by this session until `release` so no new sender can take one."""
        rows = self.conn.execute(
            "SELECT DISTINCT claimed_by FROM batches "
            "WHERE issue_id = ? AND state = 'sending' AND claimed_by IS NOT NULL",
            (issue_id,),
        ).fetchall()
        # This session's own key locks again (advisory locks stack): a sender that calls
        # `recover` has given up on its own batches in flight.
        return [int(key) for (key,) in rows if self.conn.try_lock(SENDER_CLASS, int(key))]

    def release(self, keys: Iterable[int]) -> None:
        for key in keys:
            self.conn.unlock(SENDER_CLASS, key)
