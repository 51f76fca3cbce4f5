"""Sources for `add`: one reader per input kind, chosen by content, address and file extension.

Like pelican's readers, each reader is a small class registered here; `read_source` loads a
file or URL, picks the reader and returns the articles it found.
"""

from __future__ import annotations

import codecs
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from newsletter.errors import SourceError
from newsletter.issue.model import Article

if TYPE_CHECKING:
    from newsletter.collect.fetch import Fetched

TEASER_MAX = 500
MAX_FILE_BYTES = 5 * 1024 * 1024
SNIFF_BYTES = 4096
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


def readers() -> list[type[Reader]]:
    """Registered readers, most specific sniffing first (imported here to avoid a cycle)."""
    from newsletter.collect.readers.feed import FeedReader
    from newsletter.collect.readers.html import HtmlReader
    from newsletter.collect.readers.markdown import MarkdownReader
    from newsletter.collect.readers.text import TextReader

    return [FeedReader, HtmlReader, MarkdownReader, TextReader]


@dataclass(frozen=True)
class Collected:
    """What one source gave: its articles, and notes worth telling the editor."""

    source: str
    found: list[Found]
    notes: list[str] = field(default_factory=list)


def read_source(source: str, options: ReadOptions | None = None) -> Collected:
    """Load one SOURCE (URL or file) and return its articles; failures are SourceError."""
    options = options or ReadOptions()
    document = load(source, options)
    reader = reader_for(document)(options=options)
    found = reader.read(document)
    if options.limit is not None:
        found = found[: options.limit]
    return Collected(source=source, found=found, notes=reader.notes)


def load(source: str, options: ReadOptions) -> Document:
    if re.match(r"^https?://", source, re.IGNORECASE):
        from newsletter.collect.fetch import fetch

        fetched = fetch(source, timeout=options.timeout)
        return _document_from(source, fetched)
    if re.match(r"^[a-z][a-z0-9+.-]*://", source, re.IGNORECASE):
        raise SourceError(
            "only http:// and https:// addresses can be fetched", where=source, fix=KINDS_HINT
        )
    return _read_file(source, options)


def _document_from(source: str, fetched: Fetched) -> Document:
    return Document(
        location=source,
        content=fetched.content,
        base_url=fetched.url,
        content_type=fetched.content_type,
        charset=fetched.charset,
    )


def _read_file(source: str, options: ReadOptions) -> Document:
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError("file not found", where=source, fix=f"check the path; {KINDS_HINT}")
    if path.is_dir():
        raise SourceError("is a directory", where=source, fix=KINDS_HINT)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise SourceError(
            f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, not an article",
            where=source,
            fix=KINDS_HINT,
        )
    try:
        content = path.read_bytes()
    except OSError as error:
        raise SourceError(f"cannot read ({error.strerror})", where=source) from None
    return Document(location=source, content=content, base_url=options.url)


# Media types that are certainly not an article, a feed or text.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (or Office document)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"RIFF", "a RIFF media file"),
    (b"\x7fELF", "a program"),
)


def reader_for(document: Document) -> type[Reader]:
    """Feed sniffing first, then the declared type, then the extension, then the content."""
    head = document.content[:SNIFF_BYTES]
    _refuse_binary(document, head)
    registered = readers()
    for reader in registered:
        if reader.name == "feed" and reader.sniff(head):
            return reader
    if document.content_type:
        for reader in registered:
            if document.content_type in reader.content_types:
                return reader
        if not _is_texty(document.content_type):
            raise SourceError(
                f"not a web page or feed (Content-Type: {document.content_type})",
                where=document.location,
                fix=KINDS_HINT,
            )
    for reader in registered:
        if document.suffix and document.suffix in reader.suffixes:
            return reader
    for reader in registered:
        if reader.sniff(head):
            return reader
    if document.content_type is None and document.suffix:
        # A local .csv, .json, .docx ... read as a page dump would add nonsense articles.
        raise SourceError(
            f"a {document.suffix} file is not a page, feed, Markdown or text dump",
            where=document.location,
            fix=KINDS_HINT,
        )
    return registered[-1]


def _is_texty(content_type: str) -> bool:
    return content_type.startswith("text/") or content_type.endswith(("+xml", "/xml", "/json"))


def _refuse_binary(document: Document, head: bytes) -> None:
    kind = next((label for magic, label in _BINARY_SIGNATURES if head.startswith(magic)), None)
    if kind is None and b"\x00" in head and not head.startswith(codecs.BOM_UTF16_LE + b"<"):
        kind = "a binary file"
    if kind is None and not document.content.strip():
        raise SourceError("the source is empty", where=document.location, fix=KINDS_HINT)
    if kind is not None:
        raise SourceError(
            f"{kind}, not a page, feed or text", where=document.location, fix=KINDS_HINT
        )


# --- decoding -------------------------------------------------------------------------------

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_.:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([a-zA-Z0-9_.:-]+)""", re.I)
# WHATWG: browsers decode these labels as windows-1252, and so do real pages.
_AS_WINDOWS_1252 = {"iso8859-1", "ascii", "cp1252", "latin-1", "iso8859-15"}


def decode(content: bytes, declared: str | None = None) -> str:
    """Text of a page whatever its encoding, trusting valid UTF-8 over a wrong declaration.

    Order: byte-order mark; strict UTF-8 (multi-byte UTF-8 almost never occurs by chance in
    legacy text, so a page declaring Latin-1 but written in UTF-8 comes out right); the
    declared encoding (HTTP header, then <meta> or the XML declaration) if it decodes
    cleanly; a statistical guess; windows-1252 as the last resort.
    """
    for bom, encoding in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le")):
        if content.startswith(bom):
            return content[len(bom) :].decode(encoding, errors="replace")
    if content.startswith(codecs.BOM_UTF16_BE):
        return content[2:].decode("utf-16-be", errors="replace")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for label in _declared_encodings(content, declared):
        codec = _python_codec(label)
        if codec is None or codec == "utf-8":
            continue
        try:
            return content.decode(codec)
        except UnicodeDecodeError:
            continue
    return _guess(content)


def _declared_encodings(content: bytes, declared: str | None) -> list[str]:
    head = content[:SNIFF_BYTES]
    labels = [declared] if declared else []
    for pattern in (_XML_ENCODING, _META_CHARSET):
        match = pattern.search(head)
        if match:
            labels.append(match.group(1).decode("ascii", "ignore"))
    return labels


def _python_codec(label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return "cp1252" if name in _AS_WINDOWS_1252 else name


def _guess(content: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(content))
    if not matches:
        return content.decode("cp1252", errors="replace")
    best = matches[0]
    # Short Western text fits several code pages equally well; the web's default wins ties.
    tied = [
        m.encoding
        for m in matches
        if m.chaos <= best.chaos and m.coherence >= best.coherence - 0.05
    ]
    encoding = "cp1252" if "cp1252" in tied or best.encoding == "ascii" else best.encoding
    return content.decode(encoding, errors="replace")


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
