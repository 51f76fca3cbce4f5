"""Scheduled sending: when an issue goes out, what is due, and the cron run that sends it.

A send time is read as a wall-clock time in a named zone (zoneinfo) and stored as UTC
beside that zone, so a time chosen in winter for a summer date keeps its wall-clock hour.
Times that do not exist (the spring-forward gap) are refused; times that happen twice
(fall-back) take the first occurrence unless an offset picks the second — both say so.

`run_due` is the cron job (`newsletter send --due`): under a workspace lock it sends every
scheduled issue whose time has come and that is not fully sent, resuming partial sends
through the ledger, and leaves alone issues more than `max_lateness_hours` late. With
SendGrid scheduling (`--via-sendgrid`) the issue is handed over ahead of time with
`send_at` and a `batch_id`, so SendGrid sends it on the minute and `cancel` can stop it.

The clock is never read here: every function takes `now` (an aware datetime); the CLI
passes `system_clock()`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
import logging.handlers
import os
import re
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.db import open_database, transaction, utc_now
from newsletter.errors import (
    AuthError,
    ConfigError,
    DeliveryError,
    LockBusy,
    NewsletterError,
    UserError,
)

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings

log = logging.getLogger("newsletter.schedule")

UTC = dt.UTC
# SendGrid's scheduling rules (shared/sendgrid/README.md, send_at and batch_id).
SENDGRID_MAX_AHEAD = dt.timedelta(hours=72)
CANCEL_DEADLINE = dt.timedelta(minutes=10)
# How long before its time an issue scheduled through SendGrid is handed over: long
# enough for a cron run every few minutes and a slow send, short enough that late edits
# to the issue still make it, and more than CANCEL_DEADLINE so it can still be cancelled.
SUBMIT_AHEAD = dt.timedelta(hours=1)

DUE_LOCK_FILE = ".newsletter-due.lock"
LOCK_OWNER_FILE = ".newsletter-due.owner"
LOG_FILE = "newsletter.log"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 5
WRITABLE_FIX = "make the workspace writable by the user that runs newsletter (e.g. cron's user)"


# --------------------------------------------------------------------------- the clock


class Clock(Protocol):
    """Where `now` comes from: an aware datetime in UTC."""

    def __call__(self) -> dt.datetime: ...


def system_clock() -> dt.datetime:
    """The real clock; the only place this module would read it (the CLI calls it)."""
    return dt.datetime.now(UTC)


def _aware(now: dt.datetime) -> dt.datetime:
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


def zone_setting(settings: Settings) -> str | None:
    """`[delivery] timezone`, when the settings model has it."""
    value = settings.file.delivery.timezone
    return str(value) if value else None


def via_sendgrid_setting(settings: Settings) -> bool:
    """`[delivery] via_sendgrid`, when the settings model has it."""
    return settings.file.delivery.via_sendgrid


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


def parse_send_time(text: str, zone: Zone, now: dt.datetime) -> SendTime:
    """Read `--at` in `zone`; refuse a time in the past or one the zone skips.

    An offset (`+01:00`) is accepted only to choose between the two occurrences of an
    ambiguous time, or to confirm the zone's own offset.
    """
    now = _aware(now)
    match = _SEND_TIME.match(text)
    if match is None:
        raise UserError(f"cannot read {text!r} as a date and time", where="--at", fix=_AT_FIX)
    clock = match["time"]
    try:
        wall = dt.datetime.strptime(
            f"{match['date']} {clock}",
            "%Y-%m-%d %H:%M:%S" if clock.count(":") == 2 else "%Y-%m-%d %H:%M",
        )
    except ValueError as exc:
        raise UserError(
            f"{text!r} is not a valid date and time ({exc})", where="--at", fix=_AT_FIX
        ) from None
    info = zone.info
    candidates = _occurrences(wall, info)
    if not candidates:
        raise _gap_error(wall, zone)
    notice = None
    if match["offset"]:
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
        moment = chosen[0]
    else:
        moment = candidates[0]
        if len(candidates) == 2:
            first, second = candidates
            notice = (
                f"{_wall(wall)} happens twice in {zone.name} (the clocks go back that night): "
                f"using the first, {_wall(wall)} {first.tzname()} = "
                f"{first.astimezone(UTC):%H:%M} UTC; for the second write "
                f'--at "{_wall(wall)}{_offset(second.utcoffset())}"'
            )
    utc = moment.astimezone(UTC)
    if utc <= now:
        raise UserError(
            f"{_wall(wall)} {zone.name} is in the past (it is now "
            f"{now.astimezone(info):%Y-%m-%d %H:%M %Z} there)",
            where="--at",
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


def _gap_error(wall: dt.datetime, zone: Zone) -> UserError:
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
        where="--at",
        fix=f'pick a time outside the gap, e.g. --at "{suggestion}"',
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


# --------------------------------------------------------------------------- storage


def migrate_schedule_tables(conn: sqlite3.Connection) -> None:
    """This module's own tables (to be folded into db.MIGRATIONS as 004_schedule_sendgrid).

    `sendgrid_batches`: issues scheduled through SendGrid, their batch id once created,
    and the range of ledger batches submitted with it (so `cancel` puts back exactly
    those). `schedule_reports`: when a too-late issue was reported, so cron says it once.
    """
    with transaction(conn):
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS sendgrid_batches (
                issue TEXT PRIMARY KEY,
                batch_id TEXT,
                send_at INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('planned', 'submitted', 'cancelled')),
                after_ledger_batch INTEGER,
                through_ledger_batch INTEGER,
                updated TEXT NOT NULL
            )
            """
        )
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schedule_reports (
                issue TEXT PRIMARY KEY,
                too_late_reported TEXT NOT NULL
            )
            """
        )


def open_schedule_database(settings: Settings) -> sqlite3.Connection:
    """The workspace database with this module's tables in place."""
    try:
        conn = open_database(settings.database_path)
    except sqlite3.OperationalError as exc:
        raise UserError(
            f"cannot open the database ({exc})", where=settings.database_path, fix=WRITABLE_FIX
        ) from None
    try:
        migrate_schedule_tables(conn)
    except sqlite3.OperationalError as exc:
        conn.close()
        raise UserError(
            f"cannot write to the database ({exc})", where=settings.database_path, fix=WRITABLE_FIX
        ) from None
    except BaseException:
        conn.close()
        raise
    return conn


PLANNED = "planned"
SUBMITTED = "submitted"
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Schedule:
    issue: str
    send_at: dt.datetime  # UTC
    zone: str
    created: str
    via_sendgrid: bool = False
    batch_id: str | None = None
    batch_state: str | None = None  # planned | submitted | cancelled (SendGrid only)

    @property
    def local(self) -> dt.datetime:
        return self.send_at.astimezone(ZoneInfo(self.zone))

    def describe(self) -> str:
        """Local time and zone: "2026-12-01 08:00 CET Europe/Berlin", "2026-12-01 08:00 UTC"."""
        local = self.local
        zone = "" if local.tzname() == self.zone else f" {self.zone}"
        return f"{local:%Y-%m-%d %H:%M %Z}{zone}"

    @property
    def submitted(self) -> bool:
        return self.via_sendgrid and self.batch_state == SUBMITTED

    @property
    def cancel_deadline(self) -> dt.datetime:
        return self.send_at - CANCEL_DEADLINE


_SELECT = (
    "SELECT s.issue, s.send_at_utc, s.tz, s.created, b.issue IS NOT NULL, b.batch_id, b.state "
    "FROM schedules AS s LEFT JOIN sendgrid_batches AS b "
    "ON b.issue = s.issue AND b.state != 'cancelled' "
)


def _schedule(row: tuple[Any, ...]) -> Schedule:
    issue, send_at, zone, created, via, batch_id, state = row
    return Schedule(
        issue=str(issue),
        send_at=dt.datetime.fromisoformat(send_at).astimezone(UTC),
        zone=str(zone),
        created=str(created),
        via_sendgrid=bool(via),
        batch_id=batch_id,
        batch_state=state,
    )


def get_schedule(conn: sqlite3.Connection, slug: str) -> Schedule | None:
    row = conn.execute(_SELECT + "WHERE s.issue = ?", (slug,)).fetchone()
    return _schedule(row) if row else None


def schedules(conn: sqlite3.Connection) -> list[Schedule]:
    rows = conn.execute(_SELECT + "ORDER BY s.send_at_utc, s.issue").fetchall()
    return [_schedule(row) for row in rows]


def schedule(
    conn: sqlite3.Connection, slug: str, when: SendTime, *, via_sendgrid: bool = False
) -> Schedule | None:
    """Record (or move) the send time of an issue; return the schedule it replaced.

    Refused for an issue already sent, and for one already handed to SendGrid (that
    needs `cancel` first).
    """
    from newsletter.issue import check_slug

    check_slug(slug)
    progress = issue_progress(conn, slug)
    if progress.finished:
        raise UserError(
            f"issue {slug!r} was already sent ({progress.describe()})",
            fix=f"nothing to schedule; `newsletter status {slug}` shows the details",
        )
    if via_sendgrid and progress.started:
        raise UserError(
            f"issue {slug!r} is partly sent ({progress.describe()}); SendGrid scheduling "
            "needs an issue nobody has received yet",
            fix=f"schedule it without --via-sendgrid, or finish it with `newsletter send {slug}`",
        )
    with transaction(conn):
        previous = get_schedule(conn, slug)
        if previous is not None and previous.submitted:
            raise _submitted_error(previous)
        conn.execute(
            "INSERT INTO schedules (issue, send_at_utc, tz, created) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (issue) DO UPDATE SET send_at_utc = excluded.send_at_utc, "
            "tz = excluded.tz, created = excluded.created",
            (slug, when.utc.isoformat(), when.zone.name, utc_now()),
        )
        conn.execute("DELETE FROM sendgrid_batches WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_reports WHERE issue = ?", (slug,))
        if via_sendgrid:
            conn.execute(
                "INSERT INTO sendgrid_batches (issue, batch_id, send_at, state, updated) "
                "VALUES (?, NULL, ?, 'planned', ?)",
                (slug, int(when.utc.timestamp()), utc_now()),
            )
    return previous


def unschedule(conn: sqlite3.Connection, slug: str) -> Schedule:
    """Forget an issue's send time; refused once it is in SendGrid's hands (`cancel`)."""
    with transaction(conn):
        previous = get_schedule(conn, slug)
        if previous is None:
            raise _not_scheduled(slug)
        if previous.submitted:
            raise _submitted_error(previous)
        conn.execute("DELETE FROM schedules WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM sendgrid_batches WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_reports WHERE issue = ?", (slug,))
    return previous


def _not_scheduled(slug: str) -> UserError:
    return UserError(
        f"issue {slug!r} is not scheduled", fix="`newsletter schedule --list` shows what is"
    )


def _submitted_error(previous: Schedule) -> UserError:
    return UserError(
        f"issue {previous.issue!r} is already with SendGrid, to go out at {previous.describe()}",
        fix=f"stop it with `newsletter cancel {previous.issue}` first "
        f"(possible until {_local(previous.cancel_deadline, previous.zone):%H:%M})",
    )


def _local(moment: dt.datetime, zone: str) -> dt.datetime:
    return moment.astimezone(ZoneInfo(zone))


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Progress:
    """What the ledger says about one issue."""

    counts: dict[str, int]
    prepared: bool = False

    @property
    def started(self) -> bool:
        return any(self.counts.values())

    @property
    def open(self) -> int:
        """Rows a send would still take: pending, or left `sending` by a killed run."""
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)

    @property
    def problems(self) -> int:
        return self.counts.get("failed", 0) + self.counts.get("unknown", 0)

    @property
    def finished(self) -> bool:
        """Prepared, and nothing left that a send would take."""
        return self.prepared and not self.open

    def describe(self) -> str:
        parts = [f"{self.counts.get('sent', 0):,} sent"]
        for state in ("pending", "failed", "unknown"):
            if self.counts.get(state):
                parts.append(f"{self.counts[state]:,} {state}")
        return ", ".join(parts)


def issue_progress(conn: sqlite3.Connection, slug: str) -> Progress:
    from newsletter.ledger import Ledger

    ledger = Ledger(conn)
    prepared = (
        conn.execute("SELECT 1 FROM ledger_issues WHERE slug = ?", (slug,)).fetchone() is not None
    )
    return Progress(counts=ledger.counts(slug), prepared=prepared)


class Status(StrEnum):
    SCHEDULED = "scheduled"  # its time has not come
    DUE = "due"  # the next `send --due` sends it
    TOO_LATE = "too late"  # more than max_lateness late: by hand only
    SUBMITTED = "with SendGrid"  # handed over; SendGrid sends it at its time
    SENT = "sent"
    SENT_WITH_PROBLEMS = "sent, with problems"  # failed or unknown rows: see `status`


@dataclass(frozen=True)
class Entry:
    schedule: Schedule
    status: Status
    detail: str
    progress: Progress

    @property
    def issue(self) -> str:
        return self.schedule.issue


def list_schedules(
    conn: sqlite3.Connection,
    now: dt.datetime,
    *,
    max_lateness: dt.timedelta,
    submit_ahead: dt.timedelta = SUBMIT_AHEAD,
) -> list[Entry]:
    """Every scheduled issue with its status at `now`, earliest first."""
    now = _aware(now)
    return [
        _entry(item, issue_progress(conn, item.issue), now, max_lateness, submit_ahead)
        for item in schedules(conn)
    ]


def due_issues(
    conn: sqlite3.Connection,
    now: dt.datetime,
    max_lateness: dt.timedelta,
    submit_ahead: dt.timedelta = SUBMIT_AHEAD,
) -> list[Entry]:
    """The scheduled issues a cron run at `now` sends (too-late ones are not among them)."""
    entries = list_schedules(conn, now, max_lateness=max_lateness, submit_ahead=submit_ahead)
    return [entry for entry in entries if entry.status is Status.DUE]


def _entry(
    item: Schedule,
    progress: Progress,
    now: dt.datetime,
    max_lateness: dt.timedelta,
    submit_ahead: dt.timedelta,
) -> Entry:
    late = now - item.send_at
    if progress.finished:
        if item.via_sendgrid and late < dt.timedelta():
            return Entry(
                item,
                Status.SUBMITTED,
                f"{progress.counts.get('sent', 0):,} handed over; goes out in {span(late)}; "
                f"cancel until {_local(item.cancel_deadline, item.zone):%H:%M}",
                progress,
            )
        if progress.problems:
            return Entry(
                item,
                Status.SENT_WITH_PROBLEMS,
                f"{progress.describe()}: see `newsletter status {item.issue}`",
                progress,
            )
        if not progress.counts.get("sent"):
            return Entry(
                item,
                Status.SENT_WITH_PROBLEMS,
                f"nobody to send to when it was due: `newsletter send {item.issue}` "
                "sends it once the list has active subscribers",
                progress,
            )
        return Entry(item, Status.SENT, progress.describe(), progress)
    opens = item.send_at - (submit_ahead if item.via_sendgrid else dt.timedelta())
    if now < opens:
        detail = f"in {span(late)}"
        if item.via_sendgrid:
            detail += f" (handed to SendGrid from {_local(opens, item.zone):%H:%M})"
        return Entry(item, Status.SCHEDULED, detail, progress)
    if late > max_lateness:
        return Entry(
            item,
            Status.TOO_LATE,
            f"{span(late)} late (limit {span(max_lateness)}): "
            f"send it by hand with `newsletter send {item.issue}`",
            progress,
        )
    if progress.started:
        detail = f"resumes: {progress.describe()}"
    elif late < dt.timedelta():
        detail = f"handed to SendGrid now, goes out in {span(late)}"
    else:
        detail = "now" if late < dt.timedelta(minutes=1) else f"{span(late)} late"
    return Entry(item, Status.DUE, detail, progress)


# --------------------------------------------------------------------------- the lock


@contextmanager
def due_lock(
    settings: Settings,
    now: dt.datetime,
    *,
    lock_class: type[BaseFileLock] | None = None,
) -> Iterator[None]:
    """Hold the workspace's cron lock, or raise LockBusy at once.

    The lock is an OS file lock (flock): the kernel drops it when its process dies, even
    by SIGKILL, so a killed run never blocks the next one. Where flock is missing,
    filelock falls back to a lock file naming its owner's PID and host, which it breaks
    once that process is gone.
    """
    from filelock import FileLock, Timeout

    path = settings.workspace / DUE_LOCK_FILE
    lock = (lock_class or FileLock)(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise LockBusy(
            f"another `newsletter send --due` is running{_holder(settings)}",
            where=path,
            fix="nothing to do: that run sends what is due; the lock goes when it ends",
        ) from None
    except NotImplementedError:
        raise UserError(
            "the file system does not support file locks (flock)",
            where=path,
            fix="keep the workspace on a local disk, or install filelock >= 4 "
            "(it falls back to a lock file)",
        ) from None
    except OSError as exc:
        raise UserError(
            f"cannot create the lock file ({exc.strerror or exc})", where=path, fix=WRITABLE_FIX
        ) from None
    try:
        _write_owner(settings, now)
        yield
    finally:
        # Gone before the lock is: a later busy message never names a finished run.
        (settings.workspace / LOCK_OWNER_FILE).unlink(missing_ok=True)
        lock.release()


def _write_owner(settings: Settings, now: dt.datetime) -> None:
    """Who holds the lock, for the message a second run prints (not part of the lock)."""
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "since": now.isoformat()}
    path = settings.workspace / LOCK_OWNER_FILE
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(json.dumps(owner), encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        log.warning("could not write %s (%s)", path, exc)


def _holder(settings: Settings) -> str:
    try:
        owner = json.loads((settings.workspace / LOCK_OWNER_FILE).read_text(encoding="utf-8"))
        since = dt.datetime.fromisoformat(owner["since"])
        return f" (pid {owner['pid']} on {owner['host']}, since {since:%Y-%m-%d %H:%M:%S} UTC)"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


# --------------------------------------------------------------------------- the log


class _Redact(logging.Filter):
    """Blots secrets out of every record before it reaches the file."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if secret]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, "***")
        message = re.sub(r"(?i)(bearer\s+)\S+", r"\1***", message)
        record.msg, record.args = message, None
        if record.exc_info and record.exc_text is None:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            for secret in self.secrets:
                record.exc_text = record.exc_text.replace(secret, "***")
        return True


def _utc_time(seconds: float | None) -> time.struct_time:
    return time.gmtime(seconds)


@contextmanager
def run_log(settings: Settings) -> Iterator[Path]:
    """Log the `newsletter` loggers in full to logs/newsletter.log (rotated) while open."""
    directory = settings.path("logs")
    path = directory / LOG_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8"
        )
    except OSError as exc:
        raise UserError(
            f"cannot write the log ({exc.strerror or exc})", where=path, fix=WRITABLE_FIX
        ) from None
    formatter = logging.Formatter(
        "%(asctime)sZ %(levelname)s [%(process)d] %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S"
    )
    formatter.converter = _utc_time
    handler.setFormatter(formatter)
    key = settings.secrets.sendgrid_api_key
    secrets = [key.get_secret_value()] if key else []
    for other in (settings.secrets.smtp_password, settings.secrets.unsubscribe_secret):
        if other is not None:
            secrets.append(other.get_secret_value())
    handler.addFilter(_Redact(secrets))
    handler.setLevel(logging.INFO)
    root = logging.getLogger("newsletter")
    previous_level = root.level
    root.addHandler(handler)
    if root.getEffectiveLevel() > logging.INFO:
        root.setLevel(logging.INFO)
    # At DEBUG the SendGrid client logs the Authorization header: never let it.
    logging.getLogger("python_http_client").setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()


# --------------------------------------------------------------------------- SendGrid


class BatchClient(Protocol):
    """SendGrid's batch and scheduled-sends endpoints."""

    def create_batch(self) -> str: ...
    def cancel(self, batch_id: str) -> None: ...
    def status(self, batch_id: str) -> str | None: ...


class SendGridBatches:
    """POST /v3/mail/batch and /v3/user/scheduled_sends through the official client."""

    TIMEOUT = 30.0

    def __init__(self, api_key: str, host: str) -> None:
        from sendgrid import SendGridAPIClient

        logging.getLogger("python_http_client").setLevel(logging.INFO)
        self._key = api_key
        self.host = host.rstrip("/")
        self._client = SendGridAPIClient(api_key, host=self.host)
        self._client.client.timeout = self.TIMEOUT

    def create_batch(self) -> str:
        body = self._call("POST /v3/mail/batch", lambda: self._client.client.mail.batch.post())
        batch_id = body.get("batch_id") if isinstance(body, dict) else None
        if not isinstance(batch_id, str) or not batch_id:
            raise DeliveryError(
                f"SendGrid answered POST /v3/mail/batch without a batch_id ({body!r:.200})",
                where=self.host,
            )
        return batch_id

    def cancel(self, batch_id: str) -> None:
        request = {"batch_id": batch_id, "status": "cancel"}
        self._call(
            "POST /v3/user/scheduled_sends",
            lambda: self._client.client.user.scheduled_sends.post(request_body=request),
        )

    def status(self, batch_id: str) -> str | None:
        """ "cancel" or "pause" if the batch is stopped, else None."""
        body = self._call(
            "GET /v3/user/scheduled_sends/{batch_id}",
            lambda: self._client.client.user.scheduled_sends._(batch_id).get(),
        )
        items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        for item in items:
            if isinstance(item, dict) and item.get("batch_id") == batch_id:
                return str(item.get("status")) if item.get("status") else None
        return None

    def _call(self, what: str, request: Callable[[], Any]) -> Any:
        import urllib.error

        from python_http_client import exceptions

        try:
            response = request()
        except exceptions.HTTPError as exc:
            status = int(exc.status_code)
            text = self._masked(_error_text(exc.body)) or "no details given"
            if status in (401, 403):
                raise AuthError(
                    f"SendGrid refused the API key for {what} ({status}: {text})",
                    fix="check SENDGRID_API_KEY in .env: it needs the Mail Send and "
                    "Scheduled Sends permissions",
                ) from None
            raise DeliveryError(
                f"SendGrid answered {status} to {what}: {text}", where=self.host
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryError(
                f"cannot reach SendGrid for {what} ({self._masked(str(reason))})",
                where=self.host,
                fix="check SENDGRID_API_HOST and the network, then try again",
            ) from None
        raw = response.body
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def _masked(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


def _error_text(body: bytes | str | None) -> str:
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        errors = json.loads(raw)["errors"]
        return "; ".join(str(error.get("message", "")).strip() for error in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return " ".join(raw.split())[:300]


def sendgrid_batches_for(settings: Settings) -> BatchClient:
    key = settings.secrets.sendgrid_api_key
    if key is None:
        raise ConfigError(
            "SENDGRID_API_KEY is not set: scheduling through SendGrid needs it",
            where=".env",
            fix="add the key to .env (see .env.example), or schedule without --via-sendgrid",
        )
    return SendGridBatches(key.get_secret_value(), settings.secrets.sendgrid_api_host)


# --------------------------------------------------------------------------- sending


@dataclass(frozen=True)
class Handover:
    """What SendGrid needs to hold an issue until its time: `send_at` and `batch_id`."""

    send_at: int  # unix seconds
    batch_id: str


@dataclass
class SendReport:
    """What one send of one issue did (from the delivery core's summary)."""

    sent: int = 0
    failed: int = 0
    unknown: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stopped: NewsletterError | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)
    unknown_addresses: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class IssueSender(Protocol):
    """Sends one issue through the ledger without asking anything; raises on a refusal."""

    def __call__(self, settings: Settings, slug: str, handover: Handover | None) -> SendReport: ...


def send_issue(settings: Settings, slug: str, handover: Handover | None) -> SendReport:
    """The delivery core (newsletter.send) used the way `newsletter send SLUG --yes` uses it."""
    from newsletter.send import Sender, SendOptions

    # Scheduled through SendGrid: that issue goes by SendGrid whatever [delivery] backend says.
    options = (
        SendOptions()
        if handover is None
        else SendOptions(backend="sendgrid", send_at=handover.send_at, batch_id=handover.batch_id)
    )
    with Sender(settings, slug, options) as sender:
        preflight = sender.preflight()
        log.info(
            "%s: %s recipients to send (%s already sent, %s unknown held) via %s",
            slug,
            preflight.recipients,
            preflight.already_sent,
            preflight.unknown_held,
            preflight.backend,
        )
        summary = sender.send()
    return SendReport(
        sent=summary.sent,
        failed=summary.failed,
        unknown=summary.unknown,
        skipped=summary.skipped,
        seconds=summary.seconds,
        stopped=summary.stopped,
        failures=list(summary.failures),
        unknown_addresses=list(summary.unknown_addresses),
        warnings=list(preflight.warnings),
    )


class Outcome(StrEnum):
    SENT = "sent"
    SUBMITTED = "submitted"
    PARTLY = "partly sent"
    FAILED = "failed"
    TOO_LATE = "too late"


@dataclass(frozen=True)
class IssueRun:
    """What the cron run did with one issue, and the one line it says about it."""

    issue: str
    outcome: Outcome
    line: str
    sent: int = 0
    error: NewsletterError | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SENT, Outcome.SUBMITTED)


class ExitCode(IntEnum):
    """`newsletter send --due` exit codes (cron and systemd act on them)."""

    SENT = 0  # every due issue went out in full (or was handed to SendGrid)
    CONFIG = 1  # settings, key or workspace wrong: nothing was attempted
    FAILED = 3  # something was due and nothing of it went out (incl. too late)
    AUTH = 4  # SendGrid refused the API key: nothing went out
    LOCK_BUSY = 5  # another run holds the lock: this one did nothing
    PARTLY_FAILED = 6  # some went out, some did not (failed, unknown or stopped)
    NOTHING_DUE = 7  # nothing to do, nothing said


@dataclass
class RunResult:
    issues: list[IssueRun] = field(default_factory=list)
    stopped: NewsletterError | None = None  # why the run ended before its work was done
    busy: bool = False
    log_path: Path | None = None

    @property
    def exit_code(self) -> ExitCode:
        if self.busy:
            return ExitCode.LOCK_BUSY
        if not self.issues and self.stopped is None:
            return ExitCode.NOTHING_DUE
        if self.stopped is None and all(run.ok for run in self.issues):
            return ExitCode.SENT
        if any(run.ok or run.outcome is Outcome.PARTLY for run in self.issues):
            return ExitCode.PARTLY_FAILED
        if isinstance(self.stopped, LockBusy):
            return ExitCode.LOCK_BUSY
        if isinstance(self.stopped, AuthError):
            return ExitCode.AUTH
        if isinstance(self.stopped, UserError):
            return ExitCode.CONFIG
        return ExitCode.FAILED


# A refusal that every other issue would meet too: the run stops at the first one.
_RUN_STOPPERS = (AuthError, ConfigError, LockBusy)


def run_due(
    settings: Settings,
    now: dt.datetime,
    *,
    send: IssueSender = send_issue,
    batches: Callable[[Settings], BatchClient] = sendgrid_batches_for,
    submit_ahead: dt.timedelta = SUBMIT_AHEAD,
    lock_class: type[BaseFileLock] | None = None,
    on_issue: Callable[[IssueRun], None] | None = None,
) -> RunResult:
    """The cron job: send what is due at `now`, under the workspace lock.

    Raises UserError only when it cannot even keep its log (workspace not writable);
    everything else is logged and comes back in the result.
    """
    now = _aware(now)
    with run_log(settings) as log_path:
        result = RunResult(log_path=log_path)
        try:
            with due_lock(settings, now, lock_class=lock_class):
                _run_locked(settings, now, result, send, batches, submit_ahead, on_issue)
        except LockBusy as busy:
            log.info("not run: %s", busy.line())
            result.busy = True
            result.stopped = busy
        except NewsletterError as error:
            log.error("run stopped: %s", error.line())
            result.stopped = error
        except Exception as exc:
            log.exception("run stopped by an unexpected error")
            result.stopped = DeliveryError(
                f"unexpected error: {type(exc).__name__}: {exc}",
                fix=f"details in {log_path}",
            )
        log.info(
            "run finished: exit %d (%s)",
            result.exit_code,
            result.exit_code.name.lower().replace("_", " "),
        )
        return result


def _run_locked(
    settings: Settings,
    now: dt.datetime,
    result: RunResult,
    send: IssueSender,
    batches: Callable[[Settings], BatchClient],
    submit_ahead: dt.timedelta,
    on_issue: Callable[[IssueRun], None] | None,
) -> None:
    max_lateness = dt.timedelta(hours=settings.file.delivery.max_lateness_hours)
    conn = open_schedule_database(settings)
    try:
        entries = list_schedules(conn, now, max_lateness=max_lateness, submit_ahead=submit_ahead)
        due = [entry for entry in entries if entry.status is Status.DUE]
        late = [entry for entry in entries if entry.status is Status.TOO_LATE]
        log.info(
            "run at %s: %d scheduled, %d due, %d too late",
            now.isoformat(timespec="seconds"),
            len(entries),
            len(due),
            len(late),
        )
        for entry in late:
            run = _too_late(conn, entry, max_lateness, now)
            if run is not None:
                _done(result, run, on_issue)
        if due:
            _check_backend(settings)
        for entry in due:
            run = _send_one(conn, settings, entry, now, send, batches)
            if run is None:
                continue
            _done(result, run, on_issue)
            if isinstance(run.error, _RUN_STOPPERS):
                result.stopped = run.error
                break
    finally:
        conn.close()


def _done(result: RunResult, run: IssueRun, on_issue: Callable[[IssueRun], None] | None) -> None:
    result.issues.append(run)
    (log.info if run.ok else log.error)("%s", run.line)
    if on_issue is not None:
        on_issue(run)


def _check_backend(settings: Settings) -> None:
    """Cron must not quietly fall back to writing .eml files when the key is missing."""
    backend = (settings.file.delivery.backend or "auto").lower()
    if backend == "auto" and settings.secrets.sendgrid_api_key is None:
        raise ConfigError(
            "SENDGRID_API_KEY is not set, so `auto` would only write .eml files to the outbox",
            where=settings.workspace / ".env",
            fix='add the key to .env, or set [delivery] backend = "outbox" if that is meant',
        )


def _too_late(
    conn: sqlite3.Connection, entry: Entry, max_lateness: dt.timedelta, now: dt.datetime
) -> IssueRun | None:
    """Report a too-late issue once; later runs stay quiet about it."""
    with transaction(conn):
        fresh = conn.execute(
            "INSERT OR IGNORE INTO schedule_reports (issue, too_late_reported) VALUES (?, ?)",
            (entry.issue, now.isoformat()),
        ).rowcount
    if not fresh:
        log.info("%s: still too late (reported before), not sent", entry.issue)
        return None
    item = entry.schedule
    sent = f"; {entry.progress.describe()}" if entry.progress.started else ""
    line = (
        f"not sent {entry.issue}: it was due {item.describe()}, {span(now - item.send_at)} ago, "
        f"more than max_lateness_hours ({span(max_lateness)}){sent} — send it by hand with "
        f"`newsletter send {entry.issue}`, or schedule it again"
    )
    return IssueRun(entry.issue, Outcome.TOO_LATE, line)


def _send_one(
    conn: sqlite3.Connection,
    settings: Settings,
    entry: Entry,
    now: dt.datetime,
    send: IssueSender,
    batches: Callable[[Settings], BatchClient],
) -> IssueRun | None:
    slug = entry.issue
    item = get_schedule(conn, slug)  # unscheduled since the list was read?
    if item is None:
        log.info("%s: unscheduled meanwhile, not sent", slug)
        return None
    before = issue_progress(conn, slug).counts.get("sent", 0)
    try:
        handover = _handover(conn, settings, item, batches) if item.via_sendgrid else None
        if item.via_sendgrid and handover is None:
            log.info("%s: unscheduled meanwhile, not handed to SendGrid", slug)
            return None
        log.info(
            "%s: sending (due %s%s)",
            slug,
            item.describe(),
            f", SendGrid batch {handover.batch_id}, send_at {handover.send_at}" if handover else "",
        )
        report = send(settings, slug, handover)
    except NewsletterError as error:
        return IssueRun(slug, Outcome.FAILED, f"failed {slug}: {error.line()}", error=error)
    finally:
        if item.via_sendgrid:
            _record_handed_over(conn, slug)
    held = issue_progress(conn, slug).counts.get("unknown", 0) - report.unknown
    return _outcome(item, report, before, now, handover, held)


def _handover(
    conn: sqlite3.Connection,
    settings: Settings,
    item: Schedule,
    batches: Callable[[Settings], BatchClient],
) -> Handover | None:
    """The issue's SendGrid batch id (created once, kept across resumed runs)."""
    send_at = int(item.send_at.timestamp())
    if item.batch_id is not None:
        return Handover(send_at, item.batch_id)
    batch_id = batches(settings).create_batch()
    (last,) = conn.execute("SELECT coalesce(max(id), 0) FROM batches").fetchone()
    with transaction(conn):
        # Only while still planned: an `unschedule` since the list was read wins.
        claimed = conn.execute(
            "UPDATE sendgrid_batches SET batch_id = ?, state = 'submitted', "
            "after_ledger_batch = ?, updated = ? WHERE issue = ? AND state = 'planned'",
            (batch_id, int(last), utc_now(), item.issue),
        ).rowcount
    if not claimed:
        return None
    log.info("%s: created SendGrid batch %s", item.issue, batch_id)
    return Handover(send_at, batch_id)


def _record_handed_over(conn: sqlite3.Connection, slug: str) -> None:
    """The last ledger batch sent under the issue's SendGrid batch id, for `cancel`."""
    with transaction(conn):
        conn.execute(
            "UPDATE sendgrid_batches SET through_ledger_batch = "
            "(SELECT max(b.id) FROM batches AS b JOIN ledger_issues AS i ON i.id = b.issue_id "
            "WHERE i.slug = ?), updated = ? WHERE issue = ? AND state = 'submitted'",
            (slug, utc_now(), slug),
        )


def _outcome(
    item: Schedule,
    report: SendReport,
    before: int,
    now: dt.datetime,
    handover: Handover | None,
    held: int = 0,
) -> IssueRun:
    """The line for one sent issue; `held`: unknown rows of earlier runs, left alone."""
    slug = item.issue
    for warning in report.warnings:
        log.warning("%s: %s", slug, warning)
    for address, error in report.failures[:50]:
        log.error("%s: failed %s: %s", slug, address, error)
    for address in report.unknown_addresses[:50]:
        log.error("%s: unknown (may have been delivered) %s", slug, address)
    plural = "" if report.sent == 1 else "s"
    resumed = f", {before:,} had it already" if before else ""
    if held > 0:
        resumed += f", {held:,} left unknown by an interrupted run (see `newsletter status {slug}`)"
    late = now - item.send_at
    timing = "on time" if late < dt.timedelta(minutes=1) else f"{span(late)} late"
    if report.stopped is None and not report.failed and not report.unknown:
        if not report.sent and not before:
            line = (
                f"nothing sent {slug}: no active subscriber to send it to — "
                f"`newsletter send {slug}` sends it once the list has some"
            )
            return IssueRun(slug, Outcome.FAILED, line)
        if handover is not None:
            deadline = _local(item.cancel_deadline, item.zone)
            line = (
                f"handed {slug} to SendGrid for {report.sent:,} recipient{plural}{resumed}: "
                f"it goes out {item.describe()}; `newsletter cancel {slug}` stops it "
                f"until {deadline:%H:%M}"
            )
            return IssueRun(slug, Outcome.SUBMITTED, line, report.sent)
        line = (
            f"sent {slug} to {report.sent:,} recipient{plural}{resumed} "
            f"(due {item.describe()}, {timing}, {report.seconds:.1f} s)"
        )
        return IssueRun(slug, Outcome.SENT, line, report.sent)
    counts = f"{report.sent:,} sent, {report.failed:,} failed, {report.unknown:,} unknown"
    if report.stopped is not None:
        more = f"stopped: {report.stopped.line()}"
    else:
        more = f"see `newsletter status {slug}`; `newsletter send {slug}` retries the failed"
    outcome = Outcome.PARTLY if report.sent or before else Outcome.FAILED
    line = f"{outcome.value} {slug}: {counts} — {more}"
    return IssueRun(slug, outcome, line, report.sent, error=report.stopped)


# --------------------------------------------------------------------------- cancel


@dataclass(frozen=True)
class Cancelled:
    schedule: Schedule
    at_sendgrid: bool  # False: nothing had been handed over; it was only unscheduled
    requeued: int = 0


def cancel(
    settings: Settings,
    slug: str,
    now: dt.datetime,
    *,
    batches: Callable[[Settings], BatchClient] = sendgrid_batches_for,
    lock_class: type[BaseFileLock] | None = None,
) -> Cancelled:
    """Stop a scheduled issue: at SendGrid if handed over (until 10 min before), else locally.

    Holds the cron lock, so no run hands more of the issue over meanwhile. After a
    cancel at SendGrid the recipients it held are pending again in the ledger: a later
    `send` or `schedule` reaches them, and nobody gets the issue twice.
    """
    now = _aware(now)
    with due_lock(settings, now, lock_class=lock_class):
        conn = open_schedule_database(settings)
        try:
            item = get_schedule(conn, slug)
            if item is None:
                raise _not_scheduled(slug)
            if not item.submitted:
                unschedule(conn, slug)
                return Cancelled(item, at_sendgrid=False)
            assert item.batch_id is not None
            if now > item.cancel_deadline:
                when = "went out" if now >= item.send_at else "goes out"
                raise UserError(
                    f"too late to cancel {slug}: it {when} {item.describe()}, and SendGrid "
                    f"takes cancellations only until 10 minutes before "
                    f"({_local(item.cancel_deadline, item.zone):%H:%M}); it is "
                    f"{_local(now, item.zone):%H:%M} now",
                    fix="nothing was changed",
                )
            client = batches(settings)
            if client.status(item.batch_id) != "cancel":
                client.cancel(item.batch_id)
            log.info("%s: SendGrid batch %s cancelled", slug, item.batch_id)
            requeued = _release_handed_over(conn, slug)
            return Cancelled(item, at_sendgrid=True, requeued=requeued)
        finally:
            conn.close()


def _release_handed_over(conn: sqlite3.Connection, slug: str) -> int:
    """Forget the schedule and put the recipients of the cancelled batch back to pending.

    Only ledger batches created after the handover began are touched (SendGrid holds
    exactly those under the cancelled batch id).
    """
    with transaction(conn):
        row = conn.execute(
            "SELECT after_ledger_batch, through_ledger_batch FROM sendgrid_batches WHERE issue = ?",
            (slug,),
        ).fetchone()
        after = int(row[0] or 0) if row else 0
        through = int(row[1]) if row and row[1] is not None else None
        # Mirrors Ledger.requeue for a range of batches (a batched row takes its batch's state).
        requeued = conn.execute(
            "UPDATE ledger SET state = 'pending' WHERE state = 'batched' AND batch_id IN "
            "(SELECT b.id FROM batches AS b JOIN ledger_issues AS i ON i.id = b.issue_id "
            "WHERE i.slug = ? AND b.id > ? AND b.id <= coalesce(?, b.id) "
            "AND b.state IN ('sent', 'unknown'))",
            (slug, after, through),
        ).rowcount
        conn.execute(
            "UPDATE sendgrid_batches SET state = 'cancelled', updated = ? WHERE issue = ?",
            (utc_now(), slug),
        )
        conn.execute("DELETE FROM schedules WHERE issue = ?", (slug,))
        conn.execute("DELETE FROM schedule_reports WHERE issue = ?", (slug,))
    return int(requeued)
