"""The subscriber list: import, validate, dedupe, statuses.

Addresses are checked for syntax with email-validator (no DNS lookups) and stored as
given, with surrounding spaces removed and the domain lower-cased (email-validator's
normalised form). Two addresses are the same subscriber when they are equal ignoring
case, the local part included: RFC 5321 lets a mailbox be case-sensitive, but no mailbox
provider we send to treats it so, and a double send costs more than a merged address.
Nothing else is rewritten (no Gmail dot or +tag folding).

Names are stored exactly as given; `message.display_name` gives the form that
may go into an email header (SendGrid refuses `;` and `,` in `to.name`).
"""

from __future__ import annotations

import codecs
import csv
import functools
import json
import os
import re
import sqlite3
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO, TypeVar

from email_validator import EmailNotValidError, validate_email

from newsletter.db import transaction, utc_now
from newsletter.errors import UserError

ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
STATUSES = (ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)
INACTIVE = frozenset({UNSUBSCRIBED, BOUNCED, COMPLAINED})

MAX_ADDRESS_CHARS = 320
# Problems kept in the report; all of them go to the `on_problem` callback as they occur.
MAX_KEPT_PROBLEMS = 1000
_CHUNK = 5000
_FETCH_CHUNK = 1000

_COLUMN_ROLES = {
    "email": "email",
    "emailaddress": "email",
    "mail": "email",
    "name": "name",
    "fullname": "name",
    "displayname": "name",
    "firstname": "first_name",
    "givenname": "first_name",
    "status": "status",
}
# Kept as a custom field, and joined to the first name when there is no name column.
_LAST_NAME_COLUMNS = frozenset({"lastname", "surname", "familyname"})
_RESERVED_COLUMNS = ("email", "name", "first_name", "status")
T = TypeVar("T")
# RFC 5322 dot-atom local part (ASCII), then a domain of letters, digits, dots and hyphens.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+"
)
_UNSAFE_NAME = re.compile(r"[;,\x00-\x1f\x7f]+")


class InvalidAddress(ValueError):
    """An address that cannot be a subscriber's; the message says why."""


def normalize_email(raw: str) -> tuple[str, str]:
    """(address as stored, dedupe key) for a raw address; raises InvalidAddress."""
    text = raw.strip()
    if not text:
        raise InvalidAddress("no email address")
    if len(text) > MAX_ADDRESS_CHARS:
        raise InvalidAddress(f"address longer than {MAX_ADDRESS_CHARS} characters")
    # Fast path for the common case (a million-row import spends most of its time here):
    # a plain ASCII local part needs no normalisation, and domains repeat, so each is
    # validated once. Anything else, and every error message, comes from the full check.
    if _PLAIN_ADDRESS.fullmatch(text):
        local, _, domain = text.rpartition("@")
        if len(local) <= 64 and len(text) <= 254 and (checked := _checked_domain(domain)):
            normalized = f"{local}@{checked}"
            return normalized, normalized.lower()
    try:
        # No SMTPUTF8: SendGrid and most mail servers cannot deliver to a non-ASCII local part.
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid address {text!r}: {exc}") from None
    # An internationalised domain is stored in its ASCII (IDNA) form, which every server takes.
    normalized = str(result.ascii_email or result.normalized)
    return normalized, normalized.lower()


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """The normalised ASCII domain if email-validator accepts it, else None."""
    try:
        return str(validate_email(f"a@{domain}", check_deliverability=False).ascii_domain)
    except EmailNotValidError:
        return None


def lookup_key(raw: str) -> str:
    """The dedupe key of an address, or a best guess for one that does not validate."""
    try:
        return normalize_email(raw)[1]
    except InvalidAddress:
        return raw.strip().lower()


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
    updated: str


@dataclass(frozen=True)
class RowProblem:
    """A row of an import that was not added: `rejected` (an error) or `skipped` (a note)."""

    line: int
    kind: str
    reason: str


@dataclass
class ImportReport:
    path: Path
    rows: int = 0
    added: int = 0
    rejected: int = 0
    duplicates: int = 0
    already_subscribed: int = 0
    kept: dict[str, int] = field(default_factory=dict)
    marked: dict[str, int] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return self.already_subscribed + sum(self.kept.values()) + sum(self.marked.values())

    @property
    def problems_truncated(self) -> bool:
        return self.rejected + self.skipped > len(self.problems)


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

    def __init__(self, conn: sqlite3.Connection) -> None:
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
                    if existing.status == ACTIVE
                    else f"they are {existing.status}; `add` never re-activates anyone"
                )
                raise UserError(
                    f"{existing.email} is already on the list ({existing.status})", fix=fix
                )
            self.conn.execute(
                "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
                "source, created, updated) VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?)",
                (address, key, _clean(name), _clean(first_name), _dump(fields), source, now, now),
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
        return self.set_status(email, UNSUBSCRIBED, reason)

    def set_status(self, email: str, status: str, reason: str | None) -> Subscriber:
        if status not in STATUSES:
            raise UserError(f"unknown status {status!r}", fix=f"use one of: {', '.join(STATUSES)}")
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
            raise ValueError(f"a suppression sets an inactive status, not {status!r}")
        now = utc_now()
        changed = 0
        with transaction(self.conn):
            for chunk in _chunked(lookup_key(email) for email in emails):
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
        if status is not None and status not in STATUSES:
            raise UserError(f"unknown status {status!r}", fix=f"use one of: {', '.join(STATUSES)}")
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
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self.conn.execute(
            "SELECT status, count(*) FROM subscribers GROUP BY status"
        ):
            counts[str(status)] = int(n)
        return {"total": sum(counts.values()), **counts}

    def field_names(self) -> list[str]:
        """The custom field names in use, in order of first appearance."""
        rows = self.conn.execute(
            "SELECT j.key FROM subscribers AS s, json_each(s.fields) AS j "
            "GROUP BY j.key ORDER BY min(s.id), j.key"
        ).fetchall()
        return [str(key) for (key,) in rows]

    def export_csv(self, target: Path | TextIO, status: str | None = None) -> int:
        """Write the list as CSV (UTF-8, header row) that `import_csv` reads back; return rows.

        A path is written atomically (a temporary file renamed into place).
        """
        if isinstance(target, Path):
            target.parent.mkdir(parents=True, exist_ok=True)
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
                    *(sub.fields.get(name, "") for name in extra),
                ]
            )
            count += 1
        return count

    # -- import ----------------------------------------------------------------------

    def import_csv(
        self, path: Path, on_problem: Callable[[RowProblem], None] | None = None
    ) -> ImportReport:
        """Add the rows of a CSV file: all good rows in one transaction, each bad one reported.

        The file is streamed (a million rows never sit in memory): rows are validated and
        written in chunks, and duplicates are found through the database, not a Python set.
        An import never re-activates someone unsubscribed, bounced or complained; a `status`
        column saying someone on the list as active is inactive is applied (never the
        reverse), so that an exported list keeps its opt-outs when imported elsewhere.
        """
        return _Importer(self.conn, path, on_problem).run()


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _dump(fields: dict[str, str] | None) -> str:
    if not fields:
        return "{}"
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _chunked(items: Iterable[T], size: int = _CHUNK) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass(frozen=True)
class _Columns:
    email: int
    name: int | None
    first_name: int | None
    status: int | None
    fields: tuple[tuple[str, int], ...]
    width: int
    last_name: int | None = None


@dataclass(frozen=True)
class _Candidate:
    line: int
    email: str
    key: str
    name: str | None
    first_name: str | None
    status: str
    fields: str


class _Importer:
    """One run of `import_csv`: read, validate, dedupe and insert in chunks."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        on_problem: Callable[[RowProblem], None] | None,
    ) -> None:
        self.conn = conn
        self.path = path
        self.on_problem = on_problem
        self.report = ImportReport(path=path)
        self.now = utc_now()
        self.source = f"import {path.name}"

    def run(self) -> ImportReport:
        try:
            stream = self.path.open("rb")
        except OSError as exc:
            raise UserError(f"cannot read the file ({exc.strerror})", where=self.path) from None
        with stream, transaction(self.conn):
            self.conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS import_keys "
                "(key TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
            )
            self.conn.execute("DELETE FROM temp.import_keys")
            try:
                for chunk in _chunked(self._candidates(stream)):
                    self._store(chunk)
            finally:
                self.conn.execute("DELETE FROM temp.import_keys")
        return self.report

    # -- reading -----------------------------------------------------------------------

    def _candidates(self, stream: IO[bytes]) -> Iterator[_Candidate | RowProblem]:
        """Parsed rows, or the problem that keeps a row out, in file order."""
        lines = _decoded_lines(stream, self.path)
        offset = 0  # blank lines before the first row
        first = next(lines, None)
        while first is not None and not first.strip():
            offset += 1
            first = next(lines, None)
        if first is None:
            raise UserError(
                "the file is empty", where=self.path, fix="export the list with a header row"
            )
        # strict: an unclosed quote is reported instead of silently eating later rows.
        reader = csv.reader(_chain(first, lines), delimiter=_guess_delimiter(first), strict=True)
        header_line = offset + 1
        try:
            header = next(reader)
        except csv.Error as exc:
            raise UserError(
                f"unreadable header row: {_csv_problem(exc)}", where=f"{self.path}:{header_line}"
            ) from None
        columns, has_header = self._columns(header, header_line)
        rows: Iterator[list[str]] = reader if has_header else _chain(header, reader)
        end = offset + (reader.line_num if has_header else 0)
        while True:
            start = end + 1
            try:
                cells = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                end = offset + reader.line_num
                yield RowProblem(start, "rejected", f"unreadable row: {_csv_problem(exc)}")
                continue
            end = offset + reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            self.report.rows += 1
            yield self._candidate(start, cells, columns)

    def _columns(self, header: list[str], line: int) -> tuple[_Columns, bool]:
        roles: dict[str, int] = {}
        fields: list[tuple[str, int]] = []
        where = f"{self.path}:{line}"
        last_name: int | None = None
        for index, cell in enumerate(header):
            normalized = re.sub(r"[\s_.\-]", "", cell.strip().lower())
            role = _COLUMN_ROLES.get(normalized)
            if normalized in _LAST_NAME_COLUMNS and last_name is None:
                last_name = index
            if role is None:
                name = cell.strip() or f"column{index + 1}"
                if name in (f for f, _ in fields):
                    raise UserError(f"two columns named {name!r}", where=where, fix="rename one")
                fields.append((name, index))
            elif role in roles:
                raise UserError(
                    f"two {role} columns ({header[roles[role]]!r} and {cell!r})",
                    where=where,
                    fix="keep one of them",
                )
            else:
                roles[role] = index
        if "email" in roles:
            return (
                _Columns(
                    email=roles["email"],
                    name=roles.get("name"),
                    first_name=roles.get("first_name"),
                    status=roles.get("status"),
                    fields=tuple(fields),
                    width=len(header),
                    last_name=last_name,
                ),
                True,
            )
        with_at = [index for index, cell in enumerate(header) if "@" in cell]
        if with_at and len(header) <= 2:
            email = with_at[0]
            other = 1 - email if len(header) == 2 else None
            return _Columns(email, other, None, None, (), len(header)), False
        found = ", ".join(repr(cell) for cell in header)
        raise UserError(
            f"no email column in the header row (found {found})",
            where=where,
            fix="name the column of addresses `email` (other columns: name, first_name, "
            "status, any custom field)",
        )

    def _candidate(self, line: int, cells: list[str], columns: _Columns) -> _Candidate | RowProblem:
        if len(cells) > columns.width and any(cell.strip() for cell in cells[columns.width :]):
            return RowProblem(
                line, "rejected", f"{len(cells)} cells but the header has {columns.width} columns"
            )
        cells = cells + [""] * (columns.width - len(cells))
        try:
            address, key = normalize_email(cells[columns.email])
        except InvalidAddress as exc:
            return RowProblem(line, "rejected", str(exc))
        status = ACTIVE
        if columns.status is not None:
            status = cells[columns.status].strip().lower() or ACTIVE
            if status not in STATUSES:
                return RowProblem(
                    line,
                    "rejected",
                    f"status {cells[columns.status]!r} is not one of {', '.join(STATUSES)}",
                )
        return _Candidate(
            line=line,
            email=address,
            key=key,
            name=_cell(cells, columns.name)
            if columns.name is not None
            else _full_name(cells, columns),
            first_name=_cell(cells, columns.first_name),
            status=status,
            fields=_dump({name: cells[index].strip() for name, index in columns.fields}),
        )

    # -- writing -----------------------------------------------------------------------

    def _store(self, items: list[_Candidate | RowProblem]) -> None:
        chunk = [item for item in items if isinstance(item, _Candidate)]
        keys = json.dumps([c.key for c in chunk])
        earlier: dict[str, int] = dict(
            self.conn.execute(
                "SELECT key, line FROM temp.import_keys "
                "WHERE key IN (SELECT value FROM json_each(?))",
                (keys,),
            ).fetchall()
        )
        existing: dict[str, tuple[int, str, str]] = {
            key: (sid, email, status)
            for sid, key, email, status in self.conn.execute(
                "SELECT id, email_key, email, status FROM main.subscribers "
                "WHERE email_key IN (SELECT value FROM json_each(?))",
                (keys,),
            )
        }
        new: list[_Candidate] = []
        marks: list[tuple[str, str, str, int]] = []
        for c in items:
            if isinstance(c, RowProblem):
                self._report(c)
                continue
            if c.key in earlier:
                self.report.duplicates += 1
                self._problem(c.line, "rejected", f"duplicate of line {earlier[c.key]} ({c.email})")
                continue
            earlier[c.key] = c.line
            if c.key not in existing:
                new.append(c)
                continue
            sid, email, status = existing[c.key]
            if status in INACTIVE:
                self.report.kept[status] = self.report.kept.get(status, 0) + 1
                self._problem(
                    c.line, "skipped", f"kept {status} ({email}): an import never re-activates"
                )
            elif c.status in INACTIVE:
                self.report.marked[c.status] = self.report.marked.get(c.status, 0) + 1
                marks.append((c.status, f"marked {c.status} by {self.source}", self.now, sid))
                self._problem(c.line, "skipped", f"marked {c.status} ({email}), as the file says")
            else:
                self.report.already_subscribed += 1
                self._problem(c.line, "skipped", f"already on the list ({email})")
        self.conn.executemany(
            "INSERT INTO temp.import_keys (key, line) VALUES (?, ?)",
            [(c.key, c.line) for c in chunk if earlier.get(c.key) == c.line],
        )
        if marks:
            self.conn.executemany(
                "UPDATE subscribers SET status = ?, status_reason = ?, updated = ? WHERE id = ?",
                marks,
            )
        self.conn.executemany(
            "INSERT INTO main.subscribers (email, email_key, name, first_name, fields, status, "
            "status_reason, source, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    c.email,
                    c.key,
                    c.name,
                    c.first_name,
                    c.fields,
                    c.status,
                    None if c.status == ACTIVE else f"{c.status} in {self.path.name}",
                    self.source,
                    self.now,
                    self.now,
                )
                for c in new
            ],
        )
        self.report.added += len(new)

    def _problem(self, line: int, kind: str, reason: str) -> None:
        self._report(RowProblem(line=line, kind=kind, reason=reason))

    def _report(self, problem: RowProblem) -> None:
        if problem.kind == "rejected":
            self.report.rejected += 1
        if len(self.report.problems) < MAX_KEPT_PROBLEMS:
            self.report.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)


def _full_name(cells: list[str], columns: _Columns) -> str | None:
    """First and last name joined, for lists (Mailchimp's export) without a name column."""
    if columns.last_name is None:
        return None
    parts = (_cell(cells, columns.first_name), _cell(cells, columns.last_name))
    return " ".join(part for part in parts if part) or None


def _cell(cells: list[str], index: int | None) -> str | None:
    return None if index is None else _clean(cells[index])


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


def _csv_problem(error: csv.Error) -> str:
    text = str(error)
    if "unexpected end of data" in text:
        return 'a quoted field is never closed (a missing "?), so the rest of the file is in it'
    if "expected after" in text:
        return 'text after a closing quote (a stray "?)'
    if "field larger than field limit" in text:
        return f"a field longer than {csv.field_size_limit():,} characters (an unclosed quote?)"
    if "NUL" in text:
        return "it contains a NUL byte"
    return text


def _guess_delimiter(line: str) -> str:
    """Comma unless the header row clearly uses `;` (European Excel) or tabs."""
    counts = {delimiter: line.count(delimiter) for delimiter in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


def _not_text(first_line: bytes) -> str | None:
    """What the file is, if its first line shows it is not UTF-8 CSV text."""
    if first_line.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        return "the file is a spreadsheet workbook (.xlsx/.xls), not CSV"
    if first_line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "the file is UTF-16, not UTF-8"
    if b"\x00" in first_line:
        body = first_line.removesuffix(b"\n")
        halves = (body[0::2], body[1::2])
        # ASCII text in UTF-16 without a BOM: every other byte is NUL, the others never.
        for zeros, text in (halves, halves[::-1]):
            if zeros.strip(b"\x00") == b"" and b"\x00" not in text:
                return "the file is UTF-16, not UTF-8"
        return "the file is binary, not CSV text"
    return None


def _decoded_lines(stream: IO[bytes], path: Path) -> Iterator[str]:
    """The file's lines as text: UTF-8, with or without a BOM; anything else is an error."""
    fix = "save the file as UTF-8 (in Excel: Save As > CSV UTF-8) and import it again"
    for number, raw in enumerate(stream, start=1):
        if number == 1:
            if kind := _not_text(raw):
                raise UserError(f"{kind}; nothing was imported", where=f"{path}:1", fix=fix)
            if raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            if b"\r" in raw.rstrip(b"\r\n"):
                raise UserError(
                    "the lines end with a bare CR (the old Mac format); nothing was imported",
                    where=f"{path}:1",
                    fix="save the file as CSV UTF-8 with Windows or Unix line endings",
                )
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UserError(
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                "nothing was imported",
                where=f"{path}:{number}",
                fix=fix,
            ) from None
