"""The schedule core: reading send times in a zone (DST included), storage, statuses.

Every test gives the clock explicitly; nothing here sleeps or reads the real time.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.db import open_database
from newsletter.db import schema as db_schema
from newsletter.deliver.ledger import Ledger
from newsletter.errors import UserError
from newsletter.issue.file import load_send_at
from newsletter.issue.model import Issue
from newsletter.schedule.send_time import (
    Zone,
    issue_send_time,
    parse_send_time,
    resolve_zone,
    span,
    system_zone_name,
)
from newsletter.schedule.store import (
    Status,
    due_issues,
    get_schedule,
    list_schedules,
    schedule,
    unschedule,
)
from tests._workspace import insert_subscribers, numbered

UTC = dt.UTC
BERLIN = Zone("Europe/Berlin", "--tz")
LATENESS = dt.timedelta(hours=6)


def at(text: str) -> dt.datetime:
    """A UTC instant written as 'YYYY-MM-DD HH:MM'."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    connection = open_database(tmp_path / "newsletter.db")
    try:
        yield connection
    finally:
        connection.close()


# --------------------------------------------------------------------------- time zones


def test_the_option_wins_then_the_setting_then_the_system() -> None:
    assert resolve_zone("Asia/Tokyo", "Europe/Berlin") == Zone("Asia/Tokyo", "--tz")
    assert resolve_zone(None, "Europe/Berlin") == Zone("Europe/Berlin", "[delivery] timezone")
    zone = resolve_zone(None, None, environ={"TZ": "America/New_York"})
    assert zone == Zone("America/New_York", "the TZ environment variable")


def test_the_system_zone_is_read_from_localtime_or_timezone(tmp_path: Path) -> None:
    zoneinfo = tmp_path / "usr/share/zoneinfo/Europe"
    zoneinfo.mkdir(parents=True)
    (zoneinfo / "Tirane").write_bytes(b"TZif")
    localtime = tmp_path / "localtime"
    localtime.symlink_to(zoneinfo / "Tirane")
    assert system_zone_name({}, localtime, tmp_path / "none") == (
        "Europe/Tirane",
        f"the system's zone, {localtime}",
    )
    timezone = tmp_path / "timezone"
    timezone.write_text("Europe/Skopje\n")
    assert system_zone_name({}, tmp_path / "missing", timezone)[0] == "Europe/Skopje"
    name, source = system_zone_name({}, tmp_path / "missing", tmp_path / "missing")
    assert (name, source) == ("UTC", "nowhere: the system's zone could not be told, so UTC")
    assert system_zone_name({"TZ": ":Europe/Sofia"})[0] == "Europe/Sofia"


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "Europe/Berln",
            "--tz: unknown time zone 'Europe/Berln' — did you mean Europe/Berlin? "
            "use an IANA name such as Europe/Berlin, America/New_York or UTC",
        ),
        ("europe/berlin", "--tz: unknown time zone 'europe/berlin' — did you mean Europe/Berlin?"),
        ("Europe", "--tz: unknown time zone 'Europe' — use an IANA name"),
        ("../../etc/passwd", "--tz: unknown time zone '../../etc/passwd' — use an IANA name"),
        ("CET-1CEST", "--tz: unknown time zone 'CET-1CEST'"),
    ],
)
def test_an_unknown_zone_is_one_line_with_a_guess(name: str, line: str) -> None:
    with pytest.raises(UserError) as caught:
        resolve_zone(name, None)
    assert caught.value.line().startswith(line)
    assert "\n" not in caught.value.line()


def test_a_bad_zone_in_the_environment_names_where_it_came_from() -> None:
    with pytest.raises(UserError) as caught:
        resolve_zone(None, None, environ={"TZ": "Mars/Olympus"})
    assert caught.value.line().startswith(
        "the TZ environment variable: unknown time zone 'Mars/Olympus'"
    )


# --------------------------------------------------------------------------- send times


def test_a_time_is_read_in_its_zone_and_stored_as_utc() -> None:
    when = parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-20 10:00"))
    assert when.utc == at("2026-12-01 07:00")
    assert when.local.strftime("%H:%M %Z") == "08:00 CET"
    assert when.notice is None


@pytest.mark.parametrize("text", ["2026-12-01T08:00", " 2026-12-01 8:00 ", "2026-12-01 08:00:00"])
def test_usual_spellings_are_accepted(text: str) -> None:
    assert parse_send_time(text, BERLIN, at("2026-11-20 10:00")).utc == at("2026-12-01 07:00")


def test_a_winter_schedule_for_a_summer_date_keeps_its_wall_clock_time() -> None:
    winter = at("2026-01-15 09:00")
    when = parse_send_time("2026-07-01 08:00", BERLIN, winter)
    # CEST (+02:00) applies on the day it goes out, not the +01:00 of the day it was made.
    assert when.utc == at("2026-07-01 06:00")
    assert when.local.strftime("%Y-%m-%d %H:%M %Z") == "2026-07-01 08:00 CEST"


def test_a_time_the_clocks_skip_is_refused_with_the_gap_explained() -> None:
    with pytest.raises(UserError) as caught:
        parse_send_time("2026-03-29 02:30", BERLIN, at("2026-03-01 00:00"))
    assert caught.value.line() == (
        "--at: 2026-03-29 02:30 does not exist in Europe/Berlin: that night the clocks jump "
        "from 02:00 CET straight to 03:00 CEST — pick a time outside the gap, "
        'e.g. --at "2026-03-29 03:30"'
    )


def test_the_edges_of_the_gap_are_fine() -> None:
    now = at("2026-03-01 00:00")
    assert parse_send_time("2026-03-29 01:59", BERLIN, now).utc == at("2026-03-29 00:59")
    assert parse_send_time("2026-03-29 03:00", BERLIN, now).utc == at("2026-03-29 01:00")


def test_a_time_that_happens_twice_takes_the_first_and_says_so() -> None:
    when = parse_send_time("2026-10-25 02:30", BERLIN, at("2026-10-01 00:00"))
    assert when.utc == at("2026-10-25 00:30")
    assert when.notice == (
        "2026-10-25 02:30 happens twice in Europe/Berlin (the clocks go back that night): "
        "using the first, 2026-10-25 02:30 CEST = 00:30 UTC; for the second write "
        '--at "2026-10-25 02:30+01:00"'
    )


def test_an_offset_picks_the_second_of_a_time_that_happens_twice() -> None:
    now = at("2026-10-01 00:00")
    second = parse_send_time("2026-10-25 02:30+01:00", BERLIN, now)
    assert second.utc == at("2026-10-25 01:30")
    assert second.notice is None
    assert parse_send_time("2026-10-25 02:30+0200", BERLIN, now).utc == at("2026-10-25 00:30")


def test_an_offset_that_is_not_the_zones_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        parse_send_time("2026-12-01 08:00+02:00", BERLIN, at("2026-11-01 00:00"))
    assert caught.value.line() == (
        "--at: 2026-12-01 08:00+02:00 is not a time in Europe/Berlin: there 2026-12-01 08:00 "
        "has the offset +01:00 — leave the offset out, or use +01:00"
    )


def test_a_time_in_the_past_is_refused() -> None:
    with pytest.raises(UserError) as caught:
        parse_send_time("2026-12-01 08:00", BERLIN, at("2026-12-01 07:00"))
    assert caught.value.line() == (
        "--at: 2026-12-01 08:00 Europe/Berlin is in the past (it is now 2026-12-01 08:00 CET "
        "there) — give a later time; `newsletter send SLUG` sends at once"
    )
    # One minute ahead is the future.
    assert parse_send_time("2026-12-01 08:01", BERLIN, at("2026-12-01 07:00")).utc


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ("tomorrow 8am", "--at: cannot read 'tomorrow 8am' as a date and time"),
        ("2026-12-01", "--at: cannot read '2026-12-01' as a date and time"),
        ("2026-02-30 08:00", "--at: '2026-02-30' is not a real date (day is out of range"),
        ("2026-12-01 25:00", "--at: '25:00' is not a real time of day (hour must be in"),
    ],
)
def test_unreadable_times_say_how_to_write_them(text: str, start: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_send_time(text, BERLIN, at("2026-01-01 00:00"))
    assert caught.value.line().startswith(start)
    assert caught.value.line().endswith('e.g. --at "2026-12-01 08:00"')


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        parse_send_time("2026-12-01 08:00", BERLIN, dt.datetime(2026, 1, 1))


def test_span_reads_like_a_person_would_say_it() -> None:
    assert span(dt.timedelta(days=2, hours=3, minutes=5)) == "2 d 3 h"
    assert span(dt.timedelta(hours=7, minutes=30)) == "7 h 30 min"
    assert span(dt.timedelta(hours=6)) == "6 h"
    assert span(dt.timedelta(minutes=-12)) == "12 min"
    assert span(dt.timedelta(seconds=42)) == "42 s"


# --------------------------------------------------------------------------- send_at


def test_a_send_at_without_offset_is_read_in_the_zone_like_at() -> None:
    now = at("2026-10-01 00:00")
    when = issue_send_time(dt.datetime(2026, 12, 1, 8, 0), BERLIN, now, "issue.yaml:4")
    assert when.utc == at("2026-12-01 07:00")
    twice = issue_send_time(dt.datetime(2026, 10, 25, 2, 30), BERLIN, now, "issue.yaml:4")
    assert twice.utc == at("2026-10-25 00:30")
    assert twice.notice is not None
    assert twice.notice.endswith("for the second write send_at: 2026-10-25 02:30+01:00")


def test_a_send_at_with_an_offset_is_that_instant_whatever_the_zone() -> None:
    value = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    when = issue_send_time(value, BERLIN, at("2026-11-01 00:00"), "issue.yaml:4")
    assert when.utc == at("2026-12-01 03:00")
    assert f"{when.local:%H:%M %Z}" == "04:00 CET"


def test_send_at_errors_point_at_the_issue_file() -> None:
    with pytest.raises(UserError) as caught:
        issue_send_time(dt.datetime(2026, 3, 29, 2, 30), BERLIN, at("2026-03-01 00:00"), "i:4")
    assert caught.value.line().startswith("i:4: 2026-03-29 02:30 does not exist in Europe/Berlin")
    assert caught.value.line().endswith("e.g. send_at: 2026-03-29 03:30")
    past = dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    with pytest.raises(UserError) as caught:
        issue_send_time(past, BERLIN, at("2026-12-01 08:00"), "i:4")
    assert caught.value.line().startswith("i:4: 2026-12-01 09:00 Europe/Berlin is in the past")


def test_a_yaml_offset_that_older_ruamel_kept_aside_is_put_back() -> None:
    """ruamel.yaml 0.18.0 loads 2026-12-01T08:00:00+01:00 as a naive 07:00 (UTC)."""
    from ruamel.yaml.timestamp import TimeStamp

    stamp = TimeStamp(2026, 12, 1, 7, 0)
    stamp._yaml.update(t=True, tz="+01:00", delta=dt.timedelta(hours=1))
    article = {"title": "A story", "url": "https://example.org/a"}
    document = {
        "subject": "s",
        "preheader": "p",
        "date": "2026-12-01",
        "send_at": stamp,
        "sections": [{"title": "News", "articles": [article]}],
    }
    send_at = Issue.model_validate(document).send_at
    assert send_at == dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert send_at is not None and send_at.utcoffset() == dt.timedelta(hours=1)


def test_load_send_at_reads_only_that_field_and_says_where(tmp_path: Path) -> None:
    path = tmp_path / "issue.yaml"
    path.write_text("subject: draft\nsend_at: 2026-12-01T08:00:00+01:00\n", encoding="utf-8")
    value, where = load_send_at(path)
    assert value == dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    assert where == f"{path}:2"
    path.write_text("subject: draft\n", encoding="utf-8")
    assert load_send_at(path) == (None, str(path))


# --------------------------------------------------------------------------- storage


def test_a_schedule_is_stored_with_its_zone(conn: sqlite3.Connection) -> None:
    when = parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00"))
    assert schedule(conn, "2026-12-01", when) is None
    row = conn.execute("SELECT issue, send_at_utc, tz FROM schedules").fetchone()
    assert row == ("2026-12-01", "2026-12-01T07:00:00+00:00", "Europe/Berlin")
    stored = get_schedule(conn, "2026-12-01")
    assert stored is not None
    assert stored.describe() == "2026-12-01 08:00 CET Europe/Berlin"
    assert not stored.via_sendgrid


def test_scheduling_again_moves_it_and_returns_the_old_time(conn: sqlite3.Connection) -> None:
    now = at("2026-11-01 00:00")
    schedule(conn, "a", parse_send_time("2026-12-01 08:00", BERLIN, now))
    previous = schedule(conn, "a", parse_send_time("2026-12-02 09:00", BERLIN, now))
    assert previous is not None and previous.send_at == at("2026-12-01 07:00")
    current = get_schedule(conn, "a")
    assert current is not None and current.send_at == at("2026-12-02 08:00")


def test_unschedule_forgets_and_refuses_what_is_not_there(conn: sqlite3.Connection) -> None:
    schedule(conn, "a", parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00")))
    assert unschedule(conn, "a").issue == "a"
    assert get_schedule(conn, "a") is None
    with pytest.raises(UserError) as caught:
        unschedule(conn, "a")
    assert caught.value.line() == (
        "issue 'a' is not scheduled — `newsletter schedule --list` shows what is"
    )


def test_a_bad_slug_is_refused(conn: sqlite3.Connection) -> None:
    with pytest.raises(UserError):
        schedule(
            conn, "../etc", parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00"))
        )


def test_an_issue_already_sent_is_not_scheduled(conn: sqlite3.Connection) -> None:
    insert_subscribers(conn, numbered(3))
    _send_all(conn, "a")
    with pytest.raises(UserError) as caught:
        schedule(conn, "a", parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00")))
    assert caught.value.line().startswith("issue 'a' was already sent (3 sent)")


def test_an_issue_whose_every_batch_failed_can_be_scheduled(conn: sqlite3.Connection) -> None:
    """`send` retries failed recipients, so the schedule must not call the issue sent."""
    insert_subscribers(conn, numbered(3))
    ledger = Ledger(conn)
    ledger.prepare("a")
    batch = ledger.claim_batch("a", 1000)
    assert batch is not None
    ledger.mark_failed(batch.id, "400 Bad Request")
    when = parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00"))
    assert schedule(conn, "a", when) is None
    assert get_schedule(conn, "a") is not None


def test_a_database_with_the_tables_from_before_the_migration_still_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Workspaces scheduled before 004_schedule_sendgrid got its tables from schedule.py."""
    path = tmp_path / "old.db"
    with monkeypatch.context() as before:
        before.setattr(db_schema, "MIGRATIONS", db_schema.MIGRATIONS[:3])
        old = open_database(path)
    old.execute(
        "CREATE TABLE IF NOT EXISTS sendgrid_batches (issue TEXT PRIMARY KEY, batch_id TEXT, "
        "send_at INTEGER NOT NULL, state TEXT NOT NULL CHECK (state IN ('planned', "
        "'submitted', 'cancelled')), after_ledger_batch INTEGER, through_ledger_batch INTEGER, "
        "updated TEXT NOT NULL)"
    )
    old.execute(
        "CREATE TABLE IF NOT EXISTS schedule_reports "
        "(issue TEXT PRIMARY KEY, too_late_reported TEXT NOT NULL)"
    )
    old.execute("INSERT INTO sendgrid_batches VALUES ('a', 'b1', 1, 'submitted', 3, 5, 'now')")
    old.close()
    conn = open_database(path)
    try:
        assert db_schema.applied_migrations(conn)[3] == "004_schedule_sendgrid"
        assert conn.execute("SELECT issue, batch_id FROM sendgrid_batches").fetchall() == [
            ("a", "b1")
        ]
    finally:
        conn.close()


def test_a_new_database_has_the_schedule_tables(conn: sqlite3.Connection) -> None:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"sendgrid_batches", "schedule_reports", "schedules"} <= tables


# --------------------------------------------------------------------------- statuses


def _send_all(conn: sqlite3.Connection, slug: str, *, limit: int | None = None) -> None:
    """What a send does to the ledger, without a network: every batch of 2 accepted."""
    ledger = Ledger(conn)
    ledger.prepare(slug)
    sent = 0
    while (limit is None or sent < limit) and (batch := ledger.claim_batch(slug, 2)):
        ledger.mark_sent(batch.id, "id")
        sent += len(batch.recipients)


def _statuses(conn: sqlite3.Connection, now: dt.datetime) -> dict[str, Status]:
    return {entry.issue: entry.status for entry in list_schedules(conn, now, max_lateness=LATENESS)}


def test_not_yet_due_then_due_then_too_late(conn: sqlite3.Connection) -> None:
    schedule(conn, "a", parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00")))
    assert _statuses(conn, at("2026-12-01 06:59")) == {"a": Status.SCHEDULED}
    assert _statuses(conn, at("2026-12-01 07:00")) == {"a": Status.DUE}
    assert _statuses(conn, at("2026-12-01 13:00")) == {"a": Status.DUE}  # exactly 6 h late
    assert _statuses(conn, at("2026-12-01 13:01")) == {"a": Status.TOO_LATE}
    entry = list_schedules(conn, at("2026-12-01 14:30"), max_lateness=LATENESS)[0]
    assert entry.detail == ("7 h 30 min late (limit 6 h): send it by hand with `newsletter send a`")
    assert list_schedules(conn, at("2026-12-01 06:00"), max_lateness=LATENESS)[0].detail == (
        "in 1 h"
    )


def test_due_issues_are_the_due_ones_in_time_order(conn: sqlite3.Connection) -> None:
    now = at("2026-11-01 00:00")
    schedule(conn, "later", parse_send_time("2026-12-01 09:00", BERLIN, now))
    schedule(conn, "sooner", parse_send_time("2026-12-01 08:00", BERLIN, now))
    schedule(conn, "stale", parse_send_time("2026-11-30 08:00", BERLIN, now))
    schedule(conn, "future", parse_send_time("2026-12-24 08:00", BERLIN, now))
    due = due_issues(conn, at("2026-12-01 08:30"), LATENESS)
    assert [entry.issue for entry in due] == ["sooner", "later"]


def test_a_partly_sent_issue_is_due_to_resume_and_a_finished_one_is_sent(
    conn: sqlite3.Connection,
) -> None:
    insert_subscribers(conn, numbered(5))
    now = at("2026-11-01 00:00")
    schedule(conn, "half", parse_send_time("2026-12-01 08:00", BERLIN, now))
    schedule(conn, "whole", parse_send_time("2026-12-01 08:00", BERLIN, now))
    _send_all(conn, "half", limit=2)
    _send_all(conn, "whole")
    entries = {
        e.issue: e for e in list_schedules(conn, at("2026-12-01 07:30"), max_lateness=LATENESS)
    }
    assert entries["half"].status is Status.DUE
    assert entries["half"].detail == "resumes: 2 sent, 3 pending"
    assert entries["whole"].status is Status.SENT
    assert entries["whole"].detail == "5 sent"


def test_an_issue_left_with_failures_is_not_resent_by_cron(conn: sqlite3.Connection) -> None:
    insert_subscribers(conn, numbered(4))
    schedule(conn, "a", parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00")))
    ledger = Ledger(conn)
    ledger.prepare("a")
    first = ledger.claim_batch("a", 2)
    second = ledger.claim_batch("a", 2)
    assert first is not None and second is not None
    ledger.mark_sent(first.id, "id")
    ledger.mark_failed(second.id, "400 bad request")
    entry = list_schedules(conn, at("2026-12-01 07:30"), max_lateness=LATENESS)[0]
    assert entry.status is Status.SENT_WITH_PROBLEMS
    assert entry.detail == "2 sent, 2 failed: see `newsletter status a`"
    assert due_issues(conn, at("2026-12-01 07:30"), LATENESS) == []


def test_a_send_killed_mid_batch_is_due_again(conn: sqlite3.Connection) -> None:
    insert_subscribers(conn, numbered(4))
    schedule(conn, "a", parse_send_time("2026-12-01 08:00", BERLIN, at("2026-11-01 00:00")))
    ledger = Ledger(conn)
    ledger.prepare("a")
    assert ledger.claim_batch("a", 2) is not None  # `sending`, and then the process died
    assert _statuses(conn, at("2026-12-01 07:30")) == {"a": Status.DUE}


def test_wall_clock_names_a_zone_once_when_its_abbreviation_is_its_name() -> None:
    from zoneinfo import ZoneInfo

    from newsletter.schedule.send_time import wall_clock

    moment = dt.datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("UTC"))
    assert wall_clock(moment, "UTC") == "2026-12-01 08:00 UTC"
    berlin = moment.astimezone(ZoneInfo("Europe/Berlin"))
    assert wall_clock(berlin, "Europe/Berlin") == "2026-12-01 09:00 CET Europe/Berlin"
