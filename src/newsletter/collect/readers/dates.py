"""Publication days written by people and machines: ISO stamps, numeric dates, month names.

Numeric dates are read in the order the page's language uses (day first except in US
English), so "2020/1/10" is 10 January and "10.12.2022" is 10 December.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import re

MONTHS: dict[str, int] = {}
_MONTH_NAMES = (
    # en, de, fr, es, pt, it, nl
    ("january jan januar janvier enero janeiro gennaio januari", 1),
    ("february feb februar février fevrier febrero fevereiro febbraio februari", 2),
    ("march mar märz maerz mars marzo março marco maart mrt", 3),
    ("april apr avril abril aprile", 4),
    ("may mai mayo maio maggio mei", 5),
    ("june jun juni juin junio junho giugno", 6),
    ("july jul juli juillet julio julho luglio", 7),
    ("august aug août aout agosto augustus", 8),
    ("september sep sept septembre septiembre setembro settembre", 9),
    ("october oct oktober okt octobre octubre outubro ottobre", 10),
    ("november nov novembre noviembre novembro", 11),
    ("december dec dezember dez décembre decembre diciembre dezembro dicembre", 12),
)
for _names, _number in _MONTH_NAMES:
    for _name in _names.split():
        MONTHS.setdefault(_name, _number)
# Arabic: the Levantine (Syriac) and the Egyptian (from the French) names.
for _names, _number in (
    ("كانون الثاني|يناير", 1),
    ("شباط|فبراير", 2),
    ("آذار|مارس", 3),
    ("نيسان|أبريل|ابريل", 4),
    ("أيار|مايو", 5),
    ("حزيران|يونيو", 6),
    ("تموز|يوليو", 7),
    ("آب|أغسطس|اغسطس", 8),
    ("أيلول|سبتمبر", 9),
    ("تشرين الأول|أكتوبر|اكتوبر", 10),
    ("تشرين الثاني|نوفمبر", 11),
    ("كانون الأول|ديسمبر", 12),
):
    for _name in _names.split("|"):
        MONTHS[_name] = _number

_MONTH_PATTERN = "|".join(sorted((re.escape(m) for m in MONTHS), key=len, reverse=True))
_ISO = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_YEAR_FIRST = re.compile(r"(?<!\d)(\d{4})[/.](\d{1,2})[/.](\d{1,2})(?!\d)")
_NUMERIC = re.compile(r"(?<![\d/.])(\d{1,2})[/.](\d{1,2})[/.](\d{4}|\d{2})(?![\d/])")
_DAY_MONTH = re.compile(
    rf"(?<!\d)(\d{{1,2}})(?:st|nd|rd|th|er|º)?\.?,?\s+(?:de\s+)?({_MONTH_PATTERN})(?:/[^\s\d]+)?\.?,?\s+(?:de\s+|del\s+)?(\d{{4}})",
    re.IGNORECASE,
)
_MONTH_DAY = re.compile(
    rf"(?<![\w])({_MONTH_PATTERN})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})",
    re.IGNORECASE,
)
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:/|-|$)")


def month_first(language: str | None) -> bool:
    """US English writes 12/25/2014; nearly everyone else writes the day first."""
    return (language or "").lower().replace("_", "-") in ("en-us", "en")


def parse_date(value: str | None, language: str | None = None) -> dt.date | None:
    """The day a date string names, by the page's language for numeric orders; None if none."""
    if not value or not value.strip():
        return None
    text = value.strip()
    for pattern in (_ISO, _YEAR_FIRST):
        if match := pattern.search(text):
            year, month, day = (int(part) for part in match.groups())
            return _day(year, month, day)
    try:
        return email.utils.parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError):
        pass
    if match := _DAY_MONTH.search(text):
        day_text, month_name, year_text = match.groups()
        return _day(int(year_text), MONTHS[month_name.lower()], int(day_text))
    if match := _MONTH_DAY.search(text):
        month_name, day_text, year_text = match.groups()
        return _day(int(year_text), MONTHS[month_name.lower()], int(day_text))
    if match := _NUMERIC.search(text):
        first, second, year = (int(part) for part in match.groups())
        if year < 100:
            year += 2000
        day, month = (second, first) if month_first(language) else (first, second)
        if month > 12 >= day:  # the other order is the only one that can be meant
            day, month = month, day
        return _day(year, month, day)
    return None


def url_date(url: str | None) -> dt.date | None:
    """A day written in an address's path: /2014/12/29/."""
    match = _URL_DATE.search(url or "")
    return _day(*(int(part) for part in match.groups())) if match else None


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        found = dt.date(year, month, day)
    except ValueError:
        return None
    return found if 1990 <= year <= dt.date.today().year + 1 else None
