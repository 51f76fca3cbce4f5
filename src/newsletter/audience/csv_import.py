"""CSV import: decode a file, map its columns, and add its rows to the subscriber store.

A file is streamed (a million rows never sit in memory) and every row that does not go
in is reported as a `RowProblem`. The file must be UTF-8 (a BOM is allowed), separated
by commas, semicolons or tabs; columns are recognised by name (`email`, `name`, ...).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from newsletter.audience.addresses import InvalidAddress, clean_name, normalize_email
from newsletter.audience.csv_columns import (
    COLUMN_ROLES,
    FILE_STATUS_COLUMNS,
    LAST_NAME_COLUMNS,
    SEVERITY,
    STATUS_COLUMNS,
    normal_header,
    worst,
)
from newsletter.audience.csv_sql import SUBSCRIBER_COLUMNS, dialect_of, insert_rows
from newsletter.audience.csv_text import (
    EXCEL_SEPARATOR,
    csv_problem,
    decoded_lines,
    guess_delimiter,
)
from newsletter.audience.records import INACTIVE, STATUSES, Status, chunked, dump_fields
from newsletter.db import transaction, utc_now
from newsletter.errors import UserError

if TYPE_CHECKING:
    from newsletter.db import Connection

# Problems kept in the report; all of them go to the `on_problem` callback as they occur.
MAX_KEPT_PROBLEMS = 1000


@dataclass(frozen=True)
class RowProblem:
    """A row of an import that was not added: `rejected` (an error) or `skipped` (a note)."""

    line: int
    kind: str
    reason: str
    column: int | None = None  # 1-based, when one cell is the problem


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
    conn: Connection,
    path: Path,
    on_problem: Callable[[RowProblem], None] | None = None,
    status: str | None = None,
) -> ImportReport:
    """Add the rows of the CSV file at `path` (see `SubscriberStore.import_csv`).

    `status` applies to every row (for a file of opt-outs that has no status column); a
    row's own status columns can only make it less active.
    """
    return _Importer(conn, path, on_problem, status).run()


@dataclass(frozen=True)
class _Columns:
    email: int
    name: int | None
    first_name: int | None
    status: int | None
    fields: tuple[tuple[str, int], ...]
    width: int
    last_name: int | None = None
    # (index, header, vocabulary) of every column that says a status
    statuses: tuple[tuple[int, str, dict[str, Status]], ...] = ()
    file_status: Status | None = None
    status_reason: int | None = None
    status_changed: int | None = None


@dataclass(frozen=True)
class _Candidate:
    line: int
    email: str
    key: str
    name: str | None
    first_name: str | None
    status: str
    fields: str
    reason: str | None = None
    changed: str | None = None


class _Importer:
    """One run of `import_csv`: read, validate, dedupe and insert in chunks."""

    def __init__(
        self,
        conn: Connection,
        path: Path,
        on_problem: Callable[[RowProblem], None] | None,
        status: str | None = None,
    ) -> None:
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.status = Status(status) if status is not None else None
        self.conn = conn
        self.path = path
        self.on_problem = on_problem
        self.report = ImportReport(path=path)
        self.now = utc_now()
        self.source = f"import {path.name}"
        self._sql = dialect_of(conn)

    def run(self) -> ImportReport:
        try:
            stream = self.path.open("rb")
        except OSError as exc:
            raise UserError(f"cannot read the file ({exc.strerror})", where=self.path) from None
        with stream, transaction(self.conn):
            self.conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS import_keys "
                f"(key TEXT PRIMARY KEY, line INTEGER NOT NULL){self._sql.rowid}"
            )
            self.conn.execute(f"DELETE FROM {self._sql.keys}")
            try:
                for chunk in chunked(self._candidates(stream)):
                    self._store(chunk)
            finally:
                self.conn.execute(f"DELETE FROM {self._sql.keys}")
        return self.report

    # -- reading -----------------------------------------------------------------------

    def _candidates(self, stream: IO[bytes]) -> Iterator[_Candidate | RowProblem]:
        """Parsed rows, or the problem that keeps a row out, in file order."""
        lines = decoded_lines(stream, self.path)
        offset = 0  # blank lines before the first row
        first = next(lines, None)
        while first is not None and not first.strip():
            offset += 1
            first = next(lines, None)
        delimiter = None
        declared = EXCEL_SEPARATOR.match(first or "")
        if declared:  # Excel's "sep=;" line names the delimiter; the header row follows
            delimiter = declared.group(1)
            offset += 1
            first = next(lines, None)
        if first is None:
            raise UserError(
                "the file is empty", where=self.path, fix="export the list with a header row"
            )
        # strict: an unclosed quote is reported instead of silently eating later rows.
        delimiter = delimiter or guess_delimiter(first)
        reader = csv.reader(_chain(first, lines), delimiter=delimiter, strict=True)
        header_line = offset + 1
        try:
            header = next(reader)
        except csv.Error as exc:
            raise UserError(
                f"unreadable header row: {csv_problem(exc)}", where=f"{self.path}:{header_line}"
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
                yield RowProblem(start, "rejected", f"unreadable row: {csv_problem(exc)}")
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
        statuses: list[tuple[int, str, dict[str, Status]]] = []
        file_status: Status | None = None
        for index, cell in enumerate(header):
            normalized = normal_header(cell)
            role = COLUMN_ROLES.get(normalized)
            if normalized in LAST_NAME_COLUMNS and last_name is None:
                last_name = index
            if normalized in FILE_STATUS_COLUMNS:
                file_status = worst(file_status, FILE_STATUS_COLUMNS[normalized])
            if normalized in STATUS_COLUMNS:
                if any(normalized == normal_header(header[i]) for i, _, _ in statuses):
                    raise UserError(f"two {cell.strip()!r} columns", where=where, fix="keep one")
                statuses.append((index, cell.strip(), STATUS_COLUMNS[normalized]))
                continue
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
                    status=None,
                    fields=tuple(fields),
                    width=len(header),
                    last_name=last_name,
                    statuses=tuple(statuses),
                    file_status=file_status,
                    status_reason=roles.get("status_reason"),
                    status_changed=roles.get("status_changed"),
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
        status = worst(self.status, columns.file_status)
        said: list[str] = []  # the cells that made the status, for its reason
        for index, header, values in columns.statuses:
            raw = cells[index].strip()
            if not raw:
                continue
            value = values.get(raw.lower())
            if value is None:
                accepted = ", ".join(dict.fromkeys(values))
                return RowProblem(
                    line,
                    "rejected",
                    f"{header} {raw!r} is not one of {accepted}",
                    column=index + 1,
                )
            if SEVERITY[value] > SEVERITY[status or Status.ACTIVE]:
                said = [f"{header} {raw}"]
            status = worst(status, value)
        status = status or Status.ACTIVE
        reason = _cell(cells, columns.status_reason)
        if status != Status.ACTIVE and reason is None:
            if said:
                reason = f"{said[0]} in {self.path.name}"
            elif self.status == status:
                reason = f"imported as {status} from {self.path.name}"
            else:
                reason = f"{status} in {self.path.name}"
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
            reason=reason if status != Status.ACTIVE else None,
            changed=_timestamp(cells, columns.status_changed) if status != Status.ACTIVE else None,
        )

    # -- writing -----------------------------------------------------------------------

    def _store(self, items: list[_Candidate | RowProblem]) -> None:
        chunk = [item for item in items if isinstance(item, _Candidate)]
        sql = self._sql
        keys = sql.key_list([c.key for c in chunk])
        earlier: dict[str, int] = dict(
            self.conn.execute(
                f"SELECT key, line FROM {sql.keys} WHERE key {sql.in_list}", (keys,)
            ).fetchall()
        )
        existing: dict[str, tuple[int, str, str]] = {
            key: (sid, email, status)
            for sid, key, email, status in self.conn.execute(
                f"SELECT id, email_key, email, status FROM {sql.subscribers} "
                f"WHERE email_key {sql.in_list}",
                (keys,),
            )
        }
        new: list[_Candidate] = []
        marks: list[tuple[str, str | None, str, int]] = []
        late_marks: list[tuple[str, str | None, str, str]] = []
        for c in items:
            if isinstance(c, RowProblem):
                self._report(c)
                continue
            if c.key in earlier:
                self.report.duplicates += 1
                also = ""
                if c.status in INACTIVE:  # the opt-out of a duplicate row still holds
                    late_marks.append((c.status, c.reason, c.changed or self.now, c.key))
                    also = f"; marked {c.status} as this line says"
                self._problem(
                    c.line, "rejected", f"duplicate of line {earlier[c.key]} ({c.email}){also}"
                )
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
                marks.append((c.status, c.reason, c.changed or self.now, sid))
                self._problem(c.line, "skipped", f"marked {c.status} ({email}), as the file says")
            else:
                self.report.already_subscribed += 1
                self._problem(c.line, "skipped", f"already on the list ({email})")
        insert_rows(
            self.conn,
            sql.keys,
            ("key", "line"),
            [(c.key, c.line) for c in chunk if earlier.get(c.key) == c.line],
        )
        if marks:
            self.conn.executemany(
                "UPDATE subscribers SET status = ?, status_reason = ?, updated = ? WHERE id = ?",
                marks,
            )
        insert_rows(
            self.conn,
            sql.subscribers,
            SUBSCRIBER_COLUMNS,
            [
                (
                    c.email,
                    c.key,
                    c.name,
                    c.first_name,
                    c.fields,
                    c.status,
                    c.reason,
                    self.source,
                    self.now,
                    c.changed or self.now,
                )
                for c in new
            ],
        )
        if late_marks:
            self.conn.executemany(
                f"UPDATE {sql.subscribers} SET status = ?, status_reason = ?, updated = ? "
                "WHERE email_key = ? AND status = 'active'",
                late_marks,
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


def _timestamp(cells: list[str], index: int | None) -> str | None:
    """The cell as a stored timestamp if it is an ISO date or date-time, else None."""
    if index is None:
        return None
    text = cells[index].strip()
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return text


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
