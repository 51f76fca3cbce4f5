"""Sources for `add`: one reader per input kind, chosen by content, address and file extension.

Like pelican's readers, each reader is a small class registered here; `read_source` loads a
file or URL, picks the reader and returns the articles it found.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.collect.readers.base import KINDS_HINT, Document, Found, Reader, ReadOptions
from newsletter.collect.readers.decode import SNIFF_BYTES
from newsletter.collect.readers.feed import FeedReader
from newsletter.collect.readers.html import HtmlReader
from newsletter.collect.readers.markdown import MarkdownReader
from newsletter.collect.readers.text import TextReader
from newsletter.errors import SourceError

if TYPE_CHECKING:
    from newsletter.collect.fetch import Fetched

MAX_FILE_BYTES = 5 * 1024 * 1024


def readers() -> list[type[Reader]]:
    """Registered readers, most specific sniffing first."""
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
    notes = list(reader.notes)
    if _is_address(source):  # online: a web bug that declares no size can be asked
        found = [_without_tracking_pixel(item, options, notes) for item in found]
    return Collected(source=source, found=found, notes=notes)


def _is_address(source: str) -> bool:
    return bool(re.match(r"^https?://", source, re.IGNORECASE))


def _without_tracking_pixel(item: Found, options: ReadOptions, notes: list[str]) -> Found:
    from newsletter.collect.image_size import is_served_tiny, worth_probing

    image = item.article.image
    if image is None or image.width or image.height or not worth_probing(image.src):
        return item
    if not is_served_tiny(image.src, options.timeout):
        return item
    notes.append(f"{image.src}: a 1-2 px tracking image, not used as the picture")
    return replace(item, article=item.article.model_copy(update={"image": None}))


def load(source: str, options: ReadOptions) -> Document:
    if _is_address(source):
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
