"""issue.yaml: read and validate with located errors (file:line), save keeping comments."""

from __future__ import annotations

import datetime as dt
import io
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from newsletter.errors import IssueFileError
from newsletter.files import atomic_write, read_utf8
from newsletter.issue.model import LAYOUTS, Issue, SendAt
from newsletter.validation_words import plain_message

_SEND_AT_FIX = (
    "write it as YYYY-MM-DD HH:MM in local time (e.g. 2026-12-01 08:00), "
    "or with an offset (2026-12-01T08:00:00+01:00)"
)


_DATE_FIX = "write a real date as YYYY-MM-DD"


class _BadTimestamp(str):
    """A plain scalar YAML reads as a date that does not exist (2026-02-30, 2026-13-01).

    ruamel.yaml raises a bare ValueError for those, with no line: it is kept as text with
    its line here, and read_document turns it into one located error.
    """

    line: int
    reason: str


class _Constructor(RoundTripConstructor):
    def construct_bad_aware_timestamp(self, node: ScalarNode, values: Any = None) -> Any:
        try:
            return self.construct_yaml_timestamp(node, values)
        except ValueError as error:
            bad = _BadTimestamp(node.value)
            bad.line, bad.reason = node.start_mark.line + 1, str(error)
            return bad


_Constructor.add_constructor(
    "tag:yaml.org,2002:timestamp", _Constructor.construct_bad_aware_timestamp
)


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


_DUPLICATE_KEY = re.compile(r'found duplicate key "(.*?)" with value')


def _syntax_error(path: Path, text: str, exc: MarkedYAMLError) -> IssueFileError:
    """Where the editor has to look: an unclosed quote is reported where it opens."""
    opened = _unclosed_quote_line(text, exc)
    if opened is not None:
        return IssueFileError(
            "a quoted value is not closed on its line",
            where=f"{path}:{opened}",
            fix='add the closing quote at the end of the value (write \\" for a quote inside)',
        )
    mark = exc.problem_mark or exc.context_mark
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    problem = exc.problem or exc.context or "invalid YAML"
    duplicate = _DUPLICATE_KEY.match(problem)
    if duplicate:  # ruamel's text repeats the whole value of the key
        return IssueFileError(
            f"{duplicate.group(1)!r} is written twice in the same place",
            where=where,
            fix="keep one of them (check the indentation of the second)",
        )
    return IssueFileError(
        f"YAML syntax error: {problem}", where=where, fix="correct the indentation or quoting"
    )


def _unclosed_quote_line(text: str, exc: MarkedYAMLError) -> int | None:
    """The 1-based line of a quoted scalar that runs over lines up to the error, if any."""
    if exc.context == "while scanning a quoted scalar" and exc.context_mark is not None:
        return int(exc.context_mark.line) + 1
    problem_line = exc.problem_mark.line if exc.problem_mark is not None else None
    last: int | None = None
    try:
        for token in _yaml().scan(text):
            style = getattr(token, "style", None)
            multiline = token.start_mark.line != token.end_mark.line
            # Only a quote that swallowed the line where the parser then tripped.
            reaches = problem_line is None or token.end_mark.line >= problem_line - 1
            if style in ('"', "'") and multiline and reaches:
                last = int(token.start_mark.line) + 1
    except MarkedYAMLError:
        pass
    return last


def read_document(path: Path) -> CommentedMap:
    """The raw round-trip document (comments, order and unknown keys intact)."""
    text = read_utf8(path, IssueFileError, "start the issue with `newsletter new SLUG`")
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        raise _syntax_error(path, text, exc) from None
    except ReaderError as exc:  # a character YAML does not allow, e.g. a raw form feed
        line = text.count("\n", 0, int(exc.position)) + 1
        character = exc.character if isinstance(exc.character, str) else chr(exc.character)
        raise IssueFileError(
            f"the file holds a control character ({character!r}) YAML does not allow",
            where=f"{path}:{line}",
            fix="delete it (editors sometimes paste one in from a PDF or a web page)",
        ) from None
    if not isinstance(data, CommentedMap):
        raise IssueFileError(
            "the file must be a mapping with subject, preheader, date and sections",
            where=path,
            fix="see the sample issue in issues/sample/issue.yaml",
        )
    _refuse_bad_timestamps(path, data, ())
    return data


def _refuse_bad_timestamps(path: Path, node: Any, loc: tuple[Any, ...]) -> None:
    """The first impossible date in the document, as file:line, field and the fix."""
    if isinstance(node, CommentedMap):
        children: Any = node.items()
    elif isinstance(node, CommentedSeq):
        children = enumerate(node)
    else:
        return
    for key, value in children:
        if isinstance(value, _BadTimestamp):
            field = _field_path((*loc, key))
            fix = _SEND_AT_FIX if key == "send_at" else _DATE_FIX
            raise IssueFileError(
                f"{field}: {str(value)!r} is not a real date ({value.reason})",
                where=f"{path}:{value.line}",
                fix=fix,
            )
        _refuse_bad_timestamps(path, value, (*loc, key))


def load_issue(path: Path) -> Issue:
    document = read_document(path)
    try:
        return Issue.model_validate(document)
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line = _line_of(document, loc)
        where = f"{path}:{line}" if line else str(path)
        raise IssueFileError(
            f"{_field_path(loc)}: {_message(error)}", where=where, fix=_fix_for(error, loc)
        ) from None


def load_send_at(path: Path) -> tuple[dt.datetime | None, str]:
    """The issue's `send_at` and where it is written (file:line).

    Only that field is read, so an issue still being written can be scheduled.
    """
    document = read_document(path)
    line = _line_of(document, ("send_at",)) if "send_at" in document else None
    where = f"{path}:{line}" if line else str(path)
    raw = document.get("send_at")
    if isinstance(raw, dt.date) and not isinstance(raw, dt.datetime):
        raise IssueFileError(
            "send_at: needs a time of day, not only a date",
            where=where,
            fix=_SEND_AT_FIX,
        )
    try:
        return SendAt.model_validate(document).send_at, where
    except ValidationError as exc:
        error = exc.errors()[0]
        raise IssueFileError(f"send_at: {_message(error)}", where=where, fix=_SEND_AT_FIX) from None


def save_document(path: Path, document: CommentedMap) -> None:
    """Write atomically: a crash never leaves a half-written issue file."""
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    atomic_write(path, buffer.getvalue())


def _field_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif not str(part).startswith(("function-", "model-")):
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind in {"too_short", "string_too_short"} and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    if kind == "date_from_datetime_inexact":
        return "needs only a date, not a time of day"
    if kind.startswith(("date_", "datetime_")):  # pydantic's "Input should be a valid date…"
        what = "date and time" if kind.startswith("datetime_") else "date"
        detail = str(error["msg"]).partition(", ")[2]
        return f"is not a real {what}" + (f" ({detail})" if detail else "")
    return plain_message(error)


def _fix_for(error: Any, loc: tuple[Any, ...]) -> str:
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    if field == "alt":
        return "describe the image in a few words for readers who do not see it"
    if field == "layout":
        return f"set layout to one of: {', '.join(LAYOUTS)}"
    if field in {"url", "src"}:
        return "use a full address starting with https://"
    if field == "date":
        return _DATE_FIX
    if field == "send_at":
        return _SEND_AT_FIX
    if error["type"] == "missing":
        return f"add the {field or 'missing'} field"
    return "correct the value in issue.yaml"


def _line_of(document: Any, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest node of `loc` that exists in the document."""
    node, line = document, None
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(document, CommentedMap):
        line = document.lc.line + 1
    return line
