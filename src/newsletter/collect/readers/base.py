"""What every reader shares: the Reader base class, the Document it reads, what it finds,
and the text helpers (plain text, teasers, articles). The registry is in registry.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from newsletter.collect.readers.decode import decode
from newsletter.errors import SourceError
from newsletter.issue.model import Article

TEASER_MAX = 500
ELLIPSIS = "…"
KINDS_HINT = "give an article URL, an .html page, a feed, a Markdown (.md) or a text (.txt) file"


@dataclass(frozen=True)
class ReadOptions:
    """What the editor asked for: a saved page's original address, how many feed items."""

    url: str | None = None
    limit: int | None = None
    since: dt.date | None = None
    timeout: float | None = None


@dataclass(frozen=True)
class Document:
    """The raw bytes of one source with what is known about them before parsing."""

    location: str
    content: bytes
    base_url: str | None = None
    content_type: str | None = None
    charset: str | None = None

    @property
    def suffix(self) -> str:
        path = self.location.split("?", 1)[0].split("#", 1)[0]
        return Path(path).suffix.lower()

    def text(self) -> str:
        return decode(self.content, declared=self.charset)


@dataclass(frozen=True)
class Found:
    """One article from a source, with the source's own grouping (e.g. "Latest") if it has one."""

    article: Article
    section: str | None = None
    layout: str | None = None


@dataclass
class Reader:
    """Base class: say which inputs you take, turn a Document into Found articles."""

    name: ClassVar[str] = ""
    suffixes: ClassVar[tuple[str, ...]] = ()
    content_types: ClassVar[tuple[str, ...]] = ()
    options: ReadOptions = field(default_factory=ReadOptions)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        """True when the first bytes say, beyond doubt, that this reader is the one."""
        return False

    def read(self, document: Document) -> list[Found]:
        raise NotImplementedError


# --- text helpers shared by the readers -------------------------------------------------------


def plain_text(fragment: str) -> str:
    """Text of an HTML fragment: nh3 drops every tag (and script/style content), then unescape."""
    import nh3

    cleaned = nh3.clean(re.sub(r"(?i)<br\s*/?>|</p>", " ", fragment), tags=set())
    return squash(unescape(cleaned))


def squash(text: str) -> str:
    """One line: runs of whitespace (including non-breaking spaces) become one space."""
    return re.sub(r"[\s\u00a0]+", " ", text).strip()


def cut_teaser(text: str, limit: int = TEASER_MAX) -> str:
    """At most `limit` characters, cut at a word boundary and marked with an ellipsis."""
    text = text.strip()
    if len(text) <= limit:
        return text
    cut = squash(text)[: limit - 1]
    if " " in cut:
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-–—") + ELLIPSIS


def make_article(location: str, fields: dict[str, Any]) -> Article:
    """Validate what a reader found; a field the model rejects is named in the message."""
    values = {key: value for key, value in fields.items() if value not in (None, "")}
    try:
        return Article.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        name = ".".join(str(part) for part in error["loc"]) or "article"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SourceError(
            f"{name}: {message}", where=location, fix="the source is incomplete; check it"
        ) from None


def first_of(*candidates: Callable[[], str | None] | str | None) -> str | None:
    """The first non-empty candidate; callables are only called when needed."""
    for candidate in candidates:
        value = candidate() if callable(candidate) else candidate
        if value and value.strip():
            return value.strip()
    return None
