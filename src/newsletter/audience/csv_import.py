"""CSV import: decode a file, map its columns, and add its rows to the subscriber store.

A file is streamed (a million rows never sit in memory) and every row that does not go
in is reported as a `RowProblem`. The file must be UTF-8 (a BOM is allowed), separated
by commas, semicolons or tabs; columns are recognised by name (`email`, `name`, ...).
"""

from __future__ import annotations

import codecs
import csv
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from newsletter.audience.addresses import InvalidAddress, clean_name, normalize_email
from newsletter.audience.records import INACTIVE, STATUSES, Status, chunked, dump_fields
from newsletter.db import transaction, utc_now
from newsletter.errors import UserError

# Problems kept in the report; all of them go to the `on_problem` callback as they occur.
MAX_KEPT_PROBLEMS = 1000

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


def import_csv(
    conn: sqlite3.Connection, path: Path, on_problem: Callable[[RowProblem], None] | None = None
) -> ImportReport:
    """Add the rows of the CSV file at `path` (see `SubscriberStore.import_csv`)."""
    return _Importer(conn, path, on_problem).run()


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
                for chunk in chunked(self._candidates(stream)):
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
        delimiter = None
        declared = _EXCEL_SEPARATOR.match(first or "")
        if declared:  # Excel's "sep=;" line names the delimiter; the header row follows
            delimiter = declared.group(1)
            offset += 1
            first = next(lines, None)
        if first is None:
            raise UserError(
                "the file is empty", where=self.path, fix="export the list with a header row"
            )
        # strict: an unclosed quote is reported instead of silently eating later rows.
        delimiter = delimiter or _guess_delimiter(first)
        reader = csv.reader(_chain(first, lines), delimiter=delimiter, strict=True)
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
        status: str = Status.ACTIVE
        if columns.status is not None:
            status = cells[columns.status].strip().lower() or Status.ACTIVE
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
            fields=dump_fields({name: cells[index].strip() for name, index in columns.fields}),
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
                    None if c.status == Status.ACTIVE else f"{c.status} in {self.path.name}",
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
    return None if index is None else clean_name(cells[index])


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


_EXCEL_SEPARATOR = re.compile(r"^\s*sep=(.)\s*$", re.IGNORECASE)


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
