"""The subscriber store: the subscribers table, one subscriber and the whole list.

A subscriber's status is one of `Status`; only an active subscriber is sent to. Addresses
are checked and compared by `audience.addresses`; a CSV file comes in through
`audience.csv_import` and goes out through `SubscriberStore.export_csv`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

from newsletter.audience.addresses import InvalidAddress, clean_name, lookup_key, normalize_email
from newsletter.audience.records import INACTIVE, STATUSES, Status, chunked, dump_fields
from newsletter.db import transaction, utc_now
from newsletter.db.dialect import json_keys
from newsletter.errors import UserError

if TYPE_CHECKING:
    from newsletter.db import Connection

if TYPE_CHECKING:
    from newsletter.audience.csv_import import ImportReport, RowProblem


_FETCH_CHUNK = 1000
# The columns `export_csv` writes first; the custom fields follow.
_RESERVED_COLUMNS = ("email", "name", "first_name", "status", "status_reason", "status_changed")


@dataclass(frozen=True)
class Subscriber:
    id: int
    email: str
    name: str | None
    first_name: str | None
    fields: dict[str, str]
    status: str
    status_reason: str | None
    source: str | None
    created: str
    updated: str  # when the status last changed (or when added)


_SELECT = (
    "SELECT id, email, name, first_name, fields, status, status_reason, source, created, "
    "updated FROM subscribers"
)


def _subscriber(row: tuple[Any, ...]) -> Subscriber:
    fields = row[4]
    return Subscriber(
        id=row[0],
        email=row[1],
        name=row[2],
        first_name=row[3],
        fields=json.loads(fields) if fields != "{}" else {},
        status=row[5],
        status_reason=row[6],
        source=row[7],
        created=row[8],
        updated=row[9],
    )


class SubscriberStore:
    """The subscribers table of the workspace database."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- one subscriber ----------------------------------------------------------------

    def get(self, email: str) -> Subscriber | None:
        row = self.conn.execute(f"{_SELECT} WHERE email_key = ?", (lookup_key(email),)).fetchone()
        return _subscriber(row) if row else None

    def add(
        self,
        email: str,
        name: str | None = None,
        fields: dict[str, str] | None = None,
        *,
        first_name: str | None = None,
        source: str = "add",
    ) -> Subscriber:
        try:
            address, key = normalize_email(email)
        except InvalidAddress as exc:
            raise UserError(str(exc), fix="check the spelling of the address") from None
        now = utc_now()
        with transaction(self.conn):
            existing = self.get(address)
            if existing is not None:
                fix = (
                    "nothing to do"
                    if existing.status == Status.ACTIVE
                    else f"they are {existing.status}; `add` never re-activates anyone"
                )
                raise UserError(
                    f"{existing.email} is already on the list ({existing.status})", fix=fix
                )
            self.conn.execute(
                "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
                "source, created, updated) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                (
                    address,
                    key,
                    clean_name(name),
                    clean_name(first_name),
                    dump_fields(fields),
                    source,
                    now,
                    now,
                ),
            )
        subscriber = self.get(address)
        assert subscriber is not None
        return subscriber

    def remove(self, email: str) -> Subscriber:
        """Delete the subscriber; the ledger keeps what was sent to them (no double send)."""
        with transaction(self.conn):
            subscriber = self._require(email)
            self.conn.execute("DELETE FROM subscribers WHERE id = ?", (subscriber.id,))
        return subscriber

    def unsubscribe(self, email: str, reason: str) -> Subscriber:
        return self.set_status(email, Status.UNSUBSCRIBED, reason)

    def set_status(self, email: str, status: str, reason: str | None) -> Subscriber:
        _check_status(status)
        with transaction(self.conn):
            subscriber = self._require(email)
            self.conn.execute(
                "UPDATE subscribers SET status = ?, status_reason = ?, updated = ? WHERE id = ?",
                (status, reason, utc_now(), subscriber.id),
            )
        updated = self.get(email)
        assert updated is not None
        return updated

    def apply_suppressions(
        self, emails: Iterable[str], status: str, reason: str = "suppressed by SendGrid"
    ) -> int:
        """Mark the active subscribers among `emails` with `status`; return how many changed.

        Streams `emails` in chunks within one transaction; unknown addresses are ignored,
        and someone already inactive keeps their first status.
        """
        if status not in INACTIVE:
            raise ValueError(f"a suppression sets an inactive status, not {str(status)!r}")
        now = utc_now()
        changed = 0
        with transaction(self.conn):
            for chunk in chunked(lookup_key(email) for email in emails):
                cursor = self.conn.executemany(
                    "UPDATE subscribers SET status = ?, status_reason = ?, updated = ? "
                    "WHERE email_key = ? AND status = 'active'",
                    ((status, reason, now, key) for key in chunk),
                )
                changed += cursor.rowcount
        return changed

    def _require(self, email: str) -> Subscriber:
        subscriber = self.get(email)
        if subscriber is None:
            raise UserError(
                f"{email.strip()} is not on the list",
                fix="check the spelling, or see `newsletter subscribers list`",
            )
        return subscriber

    # -- the whole list --------------------------------------------------------------

    def iter_subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """Every subscriber (or those with `status`) in id order, fetched in pages."""
        if status is not None:
            _check_status(status)
        after = -1
        while True:
            # Keyset pages: no read transaction stays open while the caller works.
            if status is None:
                rows = self.conn.execute(
                    f"{_SELECT} WHERE id > ? ORDER BY id LIMIT ?", (after, _FETCH_CHUNK)
                ).fetchall()
            else:
                rows = self.conn.execute(
                    f"{_SELECT} WHERE status = ? AND id > ? ORDER BY id LIMIT ?",
                    (status, after, _FETCH_CHUNK),
                ).fetchall()
            for row in rows:
                yield _subscriber(row)
            if len(rows) < _FETCH_CHUNK:
                return
            after = rows[-1][0]

    def stats(self) -> dict[str, int]:
        """{"total": n, "active": n, "unsubscribed": n, "bounced": n, "complained": n}."""
        counts = {status.value: 0 for status in Status}
        for status, n in self.conn.execute(
            "SELECT status, count(*) FROM subscribers GROUP BY status"
        ):
            counts[str(status)] = int(n)
        return {"total": sum(counts.values()), **counts}

    def field_names(self) -> list[str]:
        """The custom field names in use, in order of first appearance."""
        rows = self.conn.execute(
            f"SELECT j.key FROM subscribers AS s, {json_keys(self.conn, 's.fields')} "
            "GROUP BY j.key ORDER BY min(s.id), j.key"
        ).fetchall()
        return [str(key) for (key,) in rows]

    def export_csv(self, target: Path | TextIO, status: str | None = None) -> int:
        """Write the list as CSV (UTF-8, header row) that `import_csv` reads back; return rows.

        A path is written atomically (a temporary file renamed into place).
        """
        if isinstance(target, Path):
            if not target.parent.is_dir():
                raise UserError(
                    "the folder to export into does not exist",
                    where=target.parent,
                    fix="create it first, or give a path in an existing folder",
                )
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with open(fd, "w", encoding="utf-8", newline="") as stream:
                    count = self._write_csv(stream, status)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            return count
        return self._write_csv(target, status)

    def _write_csv(self, stream: IO[str], status: str | None) -> int:
        extra = [name for name in self.field_names() if name not in _RESERVED_COLUMNS]
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow([*_RESERVED_COLUMNS, *extra])
        count = 0
        for sub in self.iter_subscribers(status):
            writer.writerow(
                [
                    sub.email,
                    sub.name or "",
                    sub.first_name or "",
                    sub.status,
                    "" if sub.status == Status.ACTIVE else sub.status_reason or "",
                    "" if sub.status == Status.ACTIVE else sub.updated,
                    *(sub.fields.get(name, "") for name in extra),
                ]
            )
            count += 1
        return count

    # -- import ----------------------------------------------------------------------

    def import_csv(
        self,
        path: Path,
        on_problem: Callable[[RowProblem], None] | None = None,
        status: str | None = None,
    ) -> ImportReport:
        """Add the rows of a CSV file: all good rows in one transaction, each bad one reported.

        The file is streamed (a million rows never sit in memory): rows are validated and
        written in chunks, and duplicates are found through the database, not a Python set.
        An import never re-activates someone unsubscribed, bounced or complained; a `status`
        column saying someone on the list as active is inactive is applied (never the
        reverse), so that an exported list keeps its opt-outs when imported elsewhere.
        The status columns of other tools' exports (Ghost, Buttondown, listmonk, Substack,
        Mailchimp) count too; `status` applies to every row, and of several statuses a
        row has the one furthest from active wins.
        """
        from newsletter.audience.csv_import import import_csv
        from newsletter.audience.csv_sql import refresh_statistics

        if status is not None:
            _check_status(status)
        report = import_csv(self.conn, path, on_problem, status)
        refresh_statistics(self.conn, report.added)
        return report


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise UserError(f"unknown status {status!r}", fix=f"use one of: {', '.join(STATUSES)}")
