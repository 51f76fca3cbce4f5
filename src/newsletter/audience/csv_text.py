"""A subscriber CSV as text: UTF-8 lines (BOM allowed), its delimiter, csv's errors in words."""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from newsletter.errors import UserError


def csv_problem(error: csv.Error) -> str:
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


EXCEL_SEPARATOR = re.compile(r"^\s*\"?sep=(.)\"?\s*$", re.IGNORECASE)


def guess_delimiter(line: str) -> str:
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


def decoded_lines(stream: IO[bytes], path: Path) -> Iterator[str]:
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
