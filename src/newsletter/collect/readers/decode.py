"""Decoding a source's bytes into text, whatever its encoding (BOM, UTF-8, declared, guessed)."""

from __future__ import annotations

import codecs
import re

SNIFF_BYTES = 4096  # how much of the start is read for declarations and content sniffing
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
    labels = _declared_encodings(content, declared)
    if any(_python_codec(label) == "utf-8" for label in labels) and _mostly_utf8(content):
        # Declared UTF-8 and written in UTF-8 but for a stray byte or two (a pasted Latin-1
        # character, a truncated sequence): decoding it as anything else garbles every field.
        return content.decode("utf-8", errors="replace")
    for label in labels:
        codec = _python_codec(label)
        if codec is None or codec == "utf-8":
            continue
        try:
            return content.decode(codec)
        except UnicodeDecodeError:
            continue
    return _guess(content)


def repair_utf8(content: bytes, declared: str | None = None) -> bytes:
    """Bytes that declare UTF-8 (an XML document without a declaration does) and are UTF-8
    but for a stray byte, with that byte replaced: a parser handed them as they are falls back
    to another encoding and garbles every field."""
    try:
        content.decode("utf-8")
        return content
    except UnicodeDecodeError:
        pass
    labels = _declared_encodings(content, declared)
    implied = not labels and content.lstrip().startswith(b"<?xml")
    says_utf8 = implied or any(_python_codec(label) == "utf-8" for label in labels)
    if says_utf8 and _mostly_utf8(content):
        return content.decode("utf-8", errors="replace").encode("utf-8")
    return content


_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


def _mostly_utf8(content: bytes) -> bool:
    """The bytes agree with a UTF-8 declaration: invalid sequences are rare next to valid ones.

    Pure ASCII with a few high bytes also passes: the declaration is then the only evidence.
    """
    invalid = len(content.decode("utf-8", errors="replace")) - len(
        content.decode("utf-8", errors="ignore")
    )
    valid = len(_UTF8_MULTIBYTE.findall(content))
    return invalid <= max(2, valid // 10) if valid else invalid <= 2


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
