"""The issue model (one edition): articles, sections, the issue, and what a valid value is."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from newsletter.errors import IssueFileError
from newsletter.issue.plain_text import strip_tags
from newsletter.issue.web_url import absolute_web_url
from newsletter.lines import is_multiline

ISSUE_FILE = "issue.yaml"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
Layout = Literal["lead", "list", "grid"]
LAYOUTS: tuple[str, ...] = ("lead", "list", "grid")


def _no_line_breaks(value: str | None) -> str | None:
    """Single-line plain text: markup is removed here, before it can reach any template."""
    if value is None:
        return None
    if is_multiline(value):
        raise ValueError("must be a single line (no line breaks or line separators)")
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise ValueError("must not contain control characters")
    return strip_tags(value).strip()


class _Model(BaseModel):
    # Unknown keys are the editor's own notes: kept in the file, ignored by the build.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Image(_Model):
    src: str
    alt: str = Field(min_length=1)
    width: int | None = Field(None, ge=1, le=1200)
    height: int | None = Field(None, ge=1, le=4000)

    _src_is_url = field_validator("src")(absolute_web_url)


class Article(_Model):
    title: str = Field(min_length=1, max_length=300)
    url: str
    teaser: str = ""
    image: Image | None = None
    author: str | None = None
    date: dt.date | None = None
    label: str | None = None

    _url_is_absolute = field_validator("url")(absolute_web_url)
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


def check_slug(slug: str) -> str:
    if not SLUG_PATTERN.match(slug):
        raise IssueFileError(
            f"issue name {slug!r} is not a valid slug",
            fix="use lower-case letters, digits and dashes, e.g. 2026-12-01 or weekly-48",
        )
    return slug


class SendAt(_Model):
    """Only the send_at field: read alone, so an issue still being written can be scheduled."""

    send_at: dt.datetime | None = None

    _send_at_offset_kept = field_validator("send_at", mode="before")(_offset_kept)
