"""The issue model (one edition) and issue.yaml: load with located errors, save keeping comments."""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from newsletter.build.sanitize import strip_tags
from newsletter.errors import IssueFileError
from newsletter.files import read_utf8

ISSUE_FILE = "issue.yaml"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
Layout = Literal["lead", "list", "grid"]
LAYOUTS: tuple[str, ...] = ("lead", "list", "grid")
_SEND_AT_FIX = (
    "write it as YYYY-MM-DD HH:MM in local time (e.g. 2026-12-01 08:00), "
    "or with an offset (2026-12-01T08:00:00+01:00)"
)


def _no_line_breaks(value: str | None) -> str | None:
    """Single-line plain text: markup is removed here, before it can reach any template."""
    if value is None:
        return None
    if "\r" in value or "\n" in value:
        raise ValueError("must be a single line (no line breaks)")
    return strip_tags(value).strip()


def _absolute_web_url(value: str) -> str:
    value = value.strip()
    if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+", value) or any(c.isspace() for c in value):
        raise ValueError(f"{value!r} is not an absolute http(s) URL")
    return value


class _Model(BaseModel):
    # Unknown keys are the editor's own notes: kept in the file, ignored by the build.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Image(_Model):
    src: str
    alt: str = Field(min_length=1)
    width: int | None = Field(None, ge=1, le=1200)
    height: int | None = Field(None, ge=1, le=4000)

    _src_is_url = field_validator("src")(_absolute_web_url)


class Article(_Model):
    title: str = Field(min_length=1, max_length=300)
    url: str
    teaser: str = ""
    image: Image | None = None
    author: str | None = None
    date: dt.date | None = None
    label: str | None = None

    _url_is_absolute = field_validator("url")(_absolute_web_url)
    _title_single_line = field_validator("title", "author", "label")(_no_line_breaks)

    @field_validator("image", mode="before")
    @classmethod
    def _image_needs_alt(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                "must be a mapping with src and alt, e.g. {src: https://..., alt: ...}"
            )
        return value


class Section(_Model):
    title: str = Field(min_length=1, max_length=120)
    layout: Layout = "list"
    articles: list[Article] = Field(min_length=1)

    _title_plain = field_validator("title")(_no_line_breaks)

    @field_validator("layout", mode="before")
    @classmethod
    def _known_layout(cls, value: Any) -> Any:
        if value not in LAYOUTS:
            raise ValueError(f"unknown layout {value!r}; use one of: {', '.join(LAYOUTS)}")
        return value


def _offset_kept(value: Any) -> Any:
    """A YAML timestamp with its written offset, as a plain datetime.

    Older ruamel.yaml (0.18.0, within our floor) loads `2026-12-01T08:00:00+01:00` as a
    naive 07:00 in UTC with the offset kept aside: read as local time it would be wrong.
    """
    if not isinstance(value, dt.datetime):
        return value
    plain = dt.datetime(*value.timetuple()[:6], value.microsecond, tzinfo=value.tzinfo)
    written = getattr(value, "_yaml", None) or {}
    if value.tzinfo is None and written.get("tz"):
        delta = written.get("delta") or dt.timedelta()
        plain = plain.replace(tzinfo=dt.UTC).astimezone(dt.timezone(delta))
    return plain


class Issue(_Model):
    subject: str = Field(min_length=1, max_length=200)
    preheader: str = Field(min_length=1, max_length=200)
    date: dt.date
    send_at: dt.datetime | None = None
    intro: str = ""
    sections: list[Section] = Field(min_length=1)

    _subject_single_line = field_validator("subject", "preheader")(_no_line_breaks)
    _send_at_offset_kept = field_validator("send_at", mode="before")(_offset_kept)

    @field_validator("subject", "preheader")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _one_lead_at_most(self) -> Issue:
        leads = [s.title for s in self.sections if s.layout == "lead"]
        if len(leads) > 1:
            raise ValueError(f"only one section may have layout 'lead' (found {len(leads)})")
        return self

    def articles(self) -> list[Article]:
        return [article for section in self.sections for article in section.articles]


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def check_slug(slug: str) -> str:
    if not SLUG_PATTERN.match(slug):
        raise IssueFileError(
            f"issue name {slug!r} is not a valid slug",
            fix="use lower-case letters, digits and dashes, e.g. 2026-12-01 or weekly-48",
        )
    return slug


def read_document(path: Path) -> CommentedMap:
    """The raw round-trip document (comments, order and unknown keys intact)."""
    text = read_utf8(path, IssueFileError, "start the issue with `newsletter new SLUG`")
    try:
        data = _yaml().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "invalid YAML"
        raise IssueFileError(
            f"YAML syntax error: {problem}", where=where, fix="correct the indentation or quoting"
        ) from None
    if not isinstance(data, CommentedMap):
        raise IssueFileError(
            "the file must be a mapping with subject, preheader, date and sections",
            where=path,
            fix="see the sample issue in issues/sample/issue.yaml",
        )
    return data


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


class _SendAt(_Model):
    send_at: dt.datetime | None = None

    _send_at_offset_kept = field_validator("send_at", mode="before")(_offset_kept)


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
        return _SendAt.model_validate(document).send_at, where
    except ValidationError as exc:
        error = exc.errors()[0]
        raise IssueFileError(f"send_at: {_message(error)}", where=where, fix=_SEND_AT_FIX) from None


def save_document(path: Path, document: CommentedMap) -> None:
    """Write atomically: a crash never leaves a half-written issue file."""
    buffer = io.StringIO()
    _yaml().dump(document, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(buffer.getvalue())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _fix_for(error: Any, loc: tuple[Any, ...]) -> str:
    field = next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
    if field == "alt":
        return "describe the image in a few words for readers who do not see it"
    if field == "layout":
        return f"set layout to one of: {', '.join(LAYOUTS)}"
    if field in {"url", "src"}:
        return "use a full address starting with https://"
    if field == "date":
        return "write the date as YYYY-MM-DD"
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
