"""Scheduling through SendGrid: handover with send_at + batch_id, and cancel, against the stub.

The batch and scheduled-sends calls go to the local SendGrid stub through the official
client; the mail itself is sent by a ledger-driven fake (see test_schedule_run.py) that
records the handover it was given. The clock is injected throughout.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.errors import ExitCode, LockBusy, UserError
from newsletter.schedule.cron import run_due
from newsletter.schedule.due_lock import due_lock
from newsletter.schedule.handover import Handover, cancel
from newsletter.schedule.send_time import parse_send_time
from newsletter.schedule.store import (
    Status,
    get_schedule,
    list_schedules,
    open_schedule_database,
    schedule,
    unschedule,
)
from tests.schedule.test_schedule_run import BERLIN, DUE, MADE, FakeSender, counts, outbox_workspace
from tests.sendgrid_stub import (
    TEST_API_KEY,
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

SEND_AT = int(DUE.timestamp())
LATENESS = dt.timedelta(hours=6)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return outbox_workspace(tmp_path)


@pytest.fixture
def settings(root: Path, sendgrid_stub: SendGridStub) -> Settings:
    environ = {"SENDGRID_API_KEY": TEST_API_KEY, "SENDGRID_API_HOST": sendgrid_stub.url}
    return load_settings(root, environ=environ)


def plan(settings: Settings, slug: str = "a") -> None:
    conn = open_schedule_database(settings)
    try:
        when = parse_send_time("2026-12-01 08:00", BERLIN, MADE)
        schedule(conn, slug, when, via_sendgrid=True)
    finally:
        conn.close()


def batch_posts(stub: SendGridStub) -> int:
    return sum(1 for r in stub.requests if r.path == "/v3/mail/batch" and r.method == "POST")


def status_of(settings: Settings, now: dt.datetime) -> tuple[Status, str]:
    conn = open_schedule_database(settings)
    try:
        entry = list_schedules(conn, now, max_lateness=LATENESS)[0]
        return entry.status, entry.detail
    finally:
        conn.close()


def test_it_is_handed_over_during_the_hour_before_with_send_at_and_a_batch_id(
    settings: Settings, sendgrid_stub: SendGridStub
) -> None:
    plan(settings)
    assert status_of(settings, DUE - dt.timedelta(hours=2)) == (
        Status.SCHEDULED,
        "in 2 h (handed to SendGrid from 07:00)",
    )
    sender = FakeSender()
    early = run_due(settings, DUE - dt.timedelta(minutes=61), send=sender)
    assert early.exit_code is ExitCode.NOTHING_DUE
    result = run_due(settings, DUE - dt.timedelta(minutes=55), send=sender)
    assert result.exit_code is ExitCode.SENT
    ((slug, handover),) = sender.calls
    assert slug == "a"
    assert handover is not None
    assert handover.send_at == SEND_AT
    assert sendgrid_stub.batches == {handover.batch_id}
    assert result.issues[0].line == (
        "handed a to SendGrid for 5 recipients: it goes out 2026-12-01 08:00 CET "
        "Europe/Berlin; `newsletter cancel a` stops it until 07:50"
    )
    assert status_of(settings, DUE - dt.timedelta(minutes=50)) == (
        Status.SUBMITTED,
        "5 handed over; goes out in 50 min; cancel until 07:50",
    )
    assert status_of(settings, DUE + dt.timedelta(minutes=1))[0] is Status.SENT
    again = run_due(settings, DUE - dt.timedelta(minutes=50), send=sender)
    assert again.exit_code is ExitCode.NOTHING_DUE


def test_a_resumed_handover_keeps_its_batch_id(
    settings: Settings, sendgrid_stub: SendGridStub
) -> None:
    plan(settings)
    first = FakeSender(stop_after=2)
    run_due(settings, DUE - dt.timedelta(minutes=55), send=first)
    second = FakeSender()
    result = run_due(settings, DUE - dt.timedelta(minutes=50), send=second)
    assert result.exit_code is ExitCode.SENT
    assert first.calls[0][1] == second.calls[0][1]
    assert batch_posts(sendgrid_stub) == 1
    assert counts(settings, "a") == {"sent": 5}


def test_a_handed_over_issue_cannot_be_moved_or_unscheduled(settings: Settings) -> None:
    plan(settings)
    run_due(settings, DUE - dt.timedelta(minutes=55), send=FakeSender())
    conn = open_schedule_database(settings)
    try:
        with pytest.raises(UserError) as caught:
            unschedule(conn, "a")
        assert caught.value.line() == (
            "issue 'a' is already with SendGrid, to go out at 2026-12-01 08:00 CET "
            "Europe/Berlin — stop it with `newsletter cancel a` first (possible until 07:50)"
        )
        with pytest.raises(UserError):
            when = parse_send_time("2026-12-02 08:00", BERLIN, DUE - dt.timedelta(hours=1))
            schedule(conn, "a", when)
    finally:
        conn.close()


def test_cancel_stops_the_batch_and_puts_the_recipients_back(
    settings: Settings, sendgrid_stub: SendGridStub
) -> None:
    plan(settings)
    sender = FakeSender()
    run_due(settings, DUE - dt.timedelta(minutes=55), send=sender)
    handover = sender.calls[0][1]
    assert handover is not None
    done = cancel(settings, "a", DUE - dt.timedelta(minutes=11))
    assert done.at_sendgrid and done.requeued == 5
    assert sendgrid_stub.scheduled_sends == {handover.batch_id: "cancel"}
    (request,) = [r for r in sendgrid_stub.requests if r.path == "/v3/user/scheduled_sends"]
    assert request.status == 201
    assert counts(settings, "a") == {"pending": 5}
    conn = open_schedule_database(settings)
    try:
        assert get_schedule(conn, "a") is None
    finally:
        conn.close()
    # Nothing is due any more; sent later by hand or a new schedule, each exactly once.
    assert run_due(settings, DUE, send=sender).exit_code is ExitCode.NOTHING_DUE


def test_cancel_is_refused_within_ten_minutes_of_the_send_time(
    settings: Settings, sendgrid_stub: SendGridStub
) -> None:
    plan(settings)
    run_due(settings, DUE - dt.timedelta(minutes=55), send=FakeSender())
    with pytest.raises(UserError) as caught:
        cancel(settings, "a", DUE - dt.timedelta(minutes=9))
    assert caught.value.line() == (
        "too late to cancel a: it goes out 2026-12-01 08:00 CET Europe/Berlin, and SendGrid "
        "takes cancellations only until 10 minutes before (07:50); it is 07:51 now — "
        "nothing was changed"
    )
    with pytest.raises(UserError, match="it went out 2026-12-01 08:00"):
        cancel(settings, "a", DUE + dt.timedelta(minutes=1))
    assert sendgrid_stub.scheduled_sends == {}
    assert counts(settings, "a") == {"sent": 5}


def test_cancel_before_the_handover_only_unschedules(
    settings: Settings, sendgrid_stub: SendGridStub
) -> None:
    plan(settings)
    done = cancel(settings, "a", DUE - dt.timedelta(hours=3))
    assert not done.at_sendgrid
    assert sendgrid_stub.requests == []
    with pytest.raises(UserError, match="not scheduled"):
        cancel(settings, "a", DUE - dt.timedelta(hours=3))


def test_a_cancel_already_done_at_sendgrid_is_finished_locally(
    settings: Settings, sendgrid_stub: SendGridStub
) -> None:
    """A cancel that reached SendGrid but crashed before writing the database, run again."""
    plan(settings)
    sender = FakeSender()
    run_due(settings, DUE - dt.timedelta(minutes=55), send=sender)
    handover = sender.calls[0][1]
    assert handover is not None
    sendgrid_stub.scheduled_sends[handover.batch_id] = "cancel"
    done = cancel(settings, "a", DUE - dt.timedelta(minutes=30))
    assert done.requeued == 5
    assert not [r for r in sendgrid_stub.requests if r.method == "POST" and "scheduled" in r.path]


def test_cancel_waits_for_no_one_while_a_run_holds_the_lock(settings: Settings) -> None:
    plan(settings)
    with due_lock(settings, DUE), pytest.raises(LockBusy):
        cancel(settings, "a", DUE - dt.timedelta(hours=2))


def test_a_refused_key_stops_the_handover_before_any_mail(
    root: Path, sendgrid_stub: SendGridStub
) -> None:
    environ = {"SENDGRID_API_KEY": "SG.wrong", "SENDGRID_API_HOST": sendgrid_stub.url}
    settings = load_settings(root, environ=environ)
    plan(settings)
    sender = FakeSender()
    result = run_due(settings, DUE - dt.timedelta(minutes=55), send=sender)
    assert result.exit_code is ExitCode.AUTH
    assert sender.calls == []
    assert result.issues[0].line.startswith(
        "failed a: SendGrid refused the API key for POST /v3/mail/batch (401: The provided "
        "authorization grant is invalid, expired, or revoked)"
    )
    log = (root / "logs" / "newsletter.log").read_text()
    assert "SG.wrong" not in log


def test_handover_values_are_what_sendgrid_documents(settings: Settings) -> None:
    """send_at is a unix integer at most 72 hours ahead of the handover."""
    plan(settings)
    sender = FakeSender()
    now = DUE - dt.timedelta(minutes=55)
    run_due(settings, now, send=sender)
    handover = sender.calls[0][1]
    assert isinstance(handover, Handover)
    assert isinstance(handover.send_at, int)
    assert 0 < handover.send_at - now.timestamp() <= 72 * 3600
