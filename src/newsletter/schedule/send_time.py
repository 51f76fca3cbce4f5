"""Send times: a wall-clock time in a named zone, read with the zone's daylight-saving rules.

A send time is read as a wall-clock time in a named zone (zoneinfo) and stored as UTC
beside that zone, so a time chosen in winter for a summer date keeps its wall-clock hour.
Times that do not exist (the spring-forward gap) are refused; times that happen twice
(fall-back) take the first occurrence unless an offset picks the second — both say so.

The clock is never read here: every function takes `now` (an aware datetime); the CLI
passes `system_clock()`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.errors import UserError

UTC = dt.UTC


# --------------------------------------------------------------------------- the clock


class Clock(Protocol):
    """Where `now` comes from: an aware datetime in UTC."""

    def __call__(self) -> dt.datetime: ...


def system_clock() -> dt.datetime:
    """The real clock; the only place this module would read it (the CLI calls it)."""
    return dt.datetime.now(UTC)


def aware_utc(now: dt.datetime) -> dt.datetime:
    """`now` in UTC; a naive one is a caller's mistake, refused."""
    if now.tzinfo is None:
        raise ValueError("`now` must be an aware datetime (e.g. datetime.now(UTC))")
    return now.astimezone(UTC)


# --------------------------------------------------------------------------- time zones


@dataclass(frozen=True)
class Zone:
    """A time zone and where its name came from (said back to the user)."""

    name: str
    source: str

    @property
    def info(self) -> ZoneInfo:
        return ZoneInfo(self.name)


def load_zone(name: str, where: str) -> ZoneInfo:
    """The zone called `name`, or one clear line saying it is unknown (with a guess)."""
    key = name.strip()
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        pass
    from zoneinfo import available_timezones

    names = sorted(available_timezones())
    by_lower = {candidate.lower(): candidate for candidate in names}
    guess = by_lower.get(key.lower()) or next(
        iter(difflib.get_close_matches(key, names, n=1, cutoff=0.75)), None
    )
    hint = f"did you mean {guess}? " if guess else ""
    raise UserError(
        f"unknown time zone {name!r}",
        where=where,
        fix=f"{hint}use an IANA name such as Europe/Berlin, America/New_York or UTC",
    )


def system_zone_name(
    environ: Mapping[str, str] | None = None,
    localtime: Path = Path("/etc/localtime"),
    timezone_file: Path = Path("/etc/timezone"),
) -> tuple[str, str]:
    """The system's local zone as an IANA name, and how it was found."""
    env = os.environ if environ is None else environ
    tz = env.get("TZ", "").strip().removeprefix(":")
    if tz:
        return tz, "the TZ environment variable"
    try:
        target = os.path.realpath(localtime)
    except OSError:
        target = ""
    if "/zoneinfo/" in target:
        return target.split("/zoneinfo/", 1)[1], f"the system's zone, {localtime}"
    try:
        name = timezone_file.read_text(encoding="utf-8").strip()
    except OSError:
        name = ""
    if name:
        return name, f"the system's zone, {timezone_file}"
    return "UTC", "nowhere: the system's zone could not be told, so UTC"


def resolve_zone(
    option: str | None,
    setting: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    localtime: Path = Path("/etc/localtime"),
    timezone_file: Path = Path("/etc/timezone"),
) -> Zone:
    """--tz, else the `[delivery] timezone` setting, else the system's local zone."""
    if option:
        load_zone(option, "--tz")
        return Zone(option.strip(), "--tz")
    if setting:
        load_zone(setting, "newsletter.toml [delivery] timezone")
        return Zone(setting.strip(), "[delivery] timezone")
    name, source = system_zone_name(environ, localtime, timezone_file)
    load_zone(name, source)
    return Zone(name, source)


# --------------------------------------------------------------------------- send times


@dataclass(frozen=True)
class SendTime:
    """When an issue goes out: an instant (UTC) and the zone it was given in."""

    utc: dt.datetime
    zone: Zone
    notice: str | None = None  # said to the user: an ambiguous time was resolved

    @property
    def local(self) -> dt.datetime:
        return self.utc.astimezone(self.zone.info)


_SEND_TIME = re.compile(
    r"\s*(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{1,2}:\d{2}(?::\d{2})?)"
    r"\s*(?P<offset>Z|[+-]\d{2}:?\d{2})?\s*\Z",
    re.IGNORECASE,
)
_AT_FIX = 'write it as "YYYY-MM-DD HH:MM" in the zone\'s local time, e.g. --at "2026-12-01 08:00"'


@dataclass(frozen=True)
class _Written:
    """Where a send time was written: errors point there and show how to write one."""

    where: str
    example: str  # one time written there, e.g. '--at "{}"'


_AT = _Written("--at", '--at "{}"')


def parse_send_time(text: str, zone: Zone, now: dt.datetime) -> SendTime:
    """Read `--at` in `zone`; refuse a time in the past or one the zone skips.

    An offset (`+01:00`) is accepted only to choose between the two occurrences of an
    ambiguous time, or to confirm the zone's own offset.
    """
    now = aware_utc(now)
    match = _SEND_TIME.match(text)
    if match is None:
        raise UserError(f"cannot read {text!r} as a date and time", where="--at", fix=_AT_FIX)
    clock = match["time"]
    year, month, day = (int(part) for part in match["date"].split("-"))
    try:
        date = dt.date(year, month, day)
    except ValueError as exc:  # 2026-02-30, 2026-13-01: the pattern alone lets them through
        raise UserError(
            f"{match['date']!r} is not a real date ({exc})",
            where="--at",
            fix='write a real date as YYYY-MM-DD, e.g. --at "2026-12-01 08:00"',
        ) from None
    try:
        hour, minute, second = (int(part) for part in (clock + ":0").split(":")[:3])
        wall = dt.datetime.combine(date, dt.time(hour, minute, second))
    except ValueError as exc:
        raise UserError(
            f"{clock!r} is not a real time of day ({exc})", where="--at", fix=_AT_FIX
        ) from None
    if not match["offset"]:
        return _from_wall(wall, zone, now, _AT)
    candidates = _occurrences(wall, zone.info)
    if not candidates:
        raise _gap_error(wall, zone, _AT)
    wanted = _parse_offset(match["offset"])
    chosen = [c for c in candidates if c.utcoffset() == wanted]
    if not chosen:
        offsets = " or ".join(_offset(c.utcoffset()) for c in candidates)
        raise UserError(
            f"{text.strip()} is not a time in {zone.name}: there {_wall(wall)} has the "
            f"offset {offsets}",
            where="--at",
            fix=f"leave the offset out, or use {offsets}",
        )
    return _not_past(chosen[0], zone, now, _AT)


def issue_send_time(value: dt.datetime, zone: Zone, now: dt.datetime, where: str) -> SendTime:
    """`send_at` of issue.yaml (written at `where`): without an offset it is read in `zone`
    as `--at` is; with one it is that instant, shown in `zone`."""
    now = aware_utc(now)
    written = _Written(where, "send_at: {}")
    if value.utcoffset() is None:
        return _from_wall(value.replace(tzinfo=None), zone, now, written)
    return _not_past(value, zone, now, written)


def _from_wall(wall: dt.datetime, zone: Zone, now: dt.datetime, written: _Written) -> SendTime:
    """A wall-clock time in `zone`: refused in the gap, the first of two said so."""
    candidates = _occurrences(wall, zone.info)
    if not candidates:
        raise _gap_error(wall, zone, written)
    notice = None
    if len(candidates) == 2:
        first, second = candidates
        later = written.example.format(f"{_wall(wall)}{_offset(second.utcoffset())}")
        notice = (
            f"{_wall(wall)} happens twice in {zone.name} (the clocks go back that night): "
            f"using the first, {_wall(wall)} {first.tzname()} = "
            f"{first.astimezone(UTC):%H:%M} UTC; for the second write {later}"
        )
    return _not_past(candidates[0], zone, now, written, notice)


def _not_past(
    moment: dt.datetime,
    zone: Zone,
    now: dt.datetime,
    written: _Written,
    notice: str | None = None,
) -> SendTime:
    utc = moment.astimezone(UTC)
    if utc <= now:
        info = zone.info
        raise UserError(
            f"{_wall(utc.astimezone(info).replace(tzinfo=None))} {zone.name} is in the past "
            f"(it is now {now.astimezone(info):%Y-%m-%d %H:%M %Z} there)",
            where=written.where,
            fix="give a later time; `newsletter send SLUG` sends at once",
        )
    return SendTime(utc=utc, zone=zone, notice=notice)


def _occurrences(wall: dt.datetime, info: ZoneInfo) -> list[dt.datetime]:
    """The instants (aware, in `info`) whose local time is `wall`: 0 (gap), 1 or 2."""
    found: list[dt.datetime] = []
    for fold in (0, 1):
        aware = wall.replace(tzinfo=info, fold=fold)
        back = aware.astimezone(UTC).astimezone(info)
        if back.replace(tzinfo=None) == wall and all(
            aware.astimezone(UTC) != other.astimezone(UTC) for other in found
        ):
            found.append(aware)
    return sorted(found, key=lambda moment: moment.astimezone(UTC))


def _gap_error(wall: dt.datetime, zone: Zone, written: _Written) -> UserError:
    info = zone.info
    before = wall.replace(tzinfo=info, fold=0).utcoffset() or dt.timedelta()
    after = wall.replace(tzinfo=info, fold=1).utcoffset() or dt.timedelta()
    # The transition lies between the two readings of `wall`; find it to the minute.
    low = (wall - max(before, after)).replace(tzinfo=UTC)
    high = (wall - min(before, after)).replace(tzinfo=UTC)
    while high - low > dt.timedelta(minutes=1):
        middle = low + (high - low) / 2
        if middle.astimezone(info).utcoffset() == before:
            low = middle
        else:
            high = middle
    start = (high - dt.timedelta(microseconds=1)).astimezone(info)
    end = high.astimezone(info)
    suggestion = (wall + (after - before)).strftime("%Y-%m-%d %H:%M")
    return UserError(
        f"{_wall(wall)} does not exist in {zone.name}: that night the clocks jump from "
        f"{_round_up(start):%H:%M} {start.tzname()} straight to {end:%H:%M} {end.tzname()}",
        where=written.where,
        fix=f"pick a time outside the gap, e.g. {written.example.format(suggestion)}",
    )


def _round_up(moment: dt.datetime) -> dt.datetime:
    return (moment + dt.timedelta(microseconds=1)).replace(tzinfo=None)


def _parse_offset(text: str) -> dt.timedelta:
    if text.upper() == "Z":
        return dt.timedelta()
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))


def _offset(delta: dt.timedelta | None) -> str:
    minutes = int((delta or dt.timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{rest:02d}"


def _wall(wall: dt.datetime) -> str:
    return wall.strftime("%Y-%m-%d %H:%M" if not wall.second else "%Y-%m-%d %H:%M:%S")


def span(delta: dt.timedelta) -> str:
    """A duration for people: "2 d 3 h", "3 h 10 min", "45 s"."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def wall_clock(local: dt.datetime, zone: str) -> str:
    """ "2026-12-01 08:00 CET Europe/Berlin"; "2026-12-01 08:00 UTC" when the two agree."""
    name = "" if local.tzname() == zone else f" {zone}"
    return f"{local:%Y-%m-%d %H:%M %Z}{name}"
