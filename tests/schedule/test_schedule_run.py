"""The cron run (`run_due`): what it sends, what it leaves, what it says, its lock and log.

The clock is injected; a fake sender drives the real ledger, so nothing sleeps and no
network is needed. Sends through the real delivery core are in test_schedule_cli.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from newsletter.config import Settings, load_settings
from newsletter.db import open_database
from newsletter.deliver.ledger import Ledger
from newsletter.deliver.sender import Summary as SendReport
from newsletter.errors import AuthError, ConfigError, DeliveryError, ExitCode, LockBusy, UserError
from newsletter.schedule.cron import IssueRun, Outcome, run_due
from newsletter.schedule.due_lock import DUE_LOCK_FILE, LOCK_OWNER_FILE, due_lock
from newsletter.schedule.handover import Handover
from newsletter.schedule.send_time import Zone, parse_send_time
from newsletter.schedule.store import open_schedule_database, schedule
from tests._workspace import (
    insert_subscribers,
    make_workspace,
    numbered,
    wait_for_other_sessions,
)

UTC = dt.UTC
BERLIN = Zone("Europe/Berlin", "--tz")
MADE = dt.datetime(2026, 11, 1, tzinfo=UTC)  # when the schedules in these tests were made
DUE = dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)  # 08:00 in Berlin


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def outbox_workspace(tmp_path: Path) -> Path:
    """A workspace sending to the outbox, with issues a and b and five subscribers."""
    root = make_workspace(tmp_path)
    config = root / "newsletter.toml"
    config.write_text(
        config.read_text().replace('backend = "auto"', 'backend = "outbox"'), encoding="utf-8"
    )
    for slug in ("a", "b"):
        (root / "issues" / slug).mkdir()
        (root / "issues" / slug / "issue.yaml").write_text("subject: x\n")
    conn = open_database(load_settings(root).database_path)
    try:
        insert_subscribers(conn, numbered(5))
    finally:
        conn.close()
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return outbox_workspace(tmp_path)


@pytest.fixture
def settings(root: Path) -> Settings:
    return load_settings(root, environ={})


@pytest.fixture
def engine_settings(engine: str, root: Path) -> Settings:
    """`settings` on the test's engine: on PostgreSQL the `engine` fixture's DATABASE_URL,
    holding the five subscribers of `outbox_workspace` too."""
    url = os.environ.get("DATABASE_URL")
    settings = load_settings(root, environ={"DATABASE_URL": url} if url else {})
    if url:
        conn = open_database(settings.database)
        try:
            insert_subscribers(conn, numbered(5))
        finally:
            conn.close()
    return settings


def plan(settings: Settings, slug: str, local: str, *, via_sendgrid: bool = False) -> None:
    conn = open_schedule_database(settings)
    try:
        schedule(conn, slug, parse_send_time(local, BERLIN, MADE), via_sendgrid=via_sendgrid)
    finally:
        conn.close()


class FakeSender:
    """Sends through the real ledger in batches of 2; can stop, fail or refuse on cue."""

    def __init__(
        self,
        *,
        stop_after: int | None = None,
        refuse: Exception | None = None,
        fail_batch: int | None = None,
    ) -> None:
        self.stop_after = stop_after
        self.refuse = refuse
        self.fail_batch = fail_batch
        self.calls: list[tuple[str, Handover | None]] = []

    def __call__(self, settings: Settings, slug: str, handover: Handover | None) -> SendReport:
        self.calls.append((slug, handover))
        if self.refuse is not None:
            raise self.refuse
        conn = open_database(settings.database)
        try:
            ledger = Ledger(conn)
            ledger.recover(slug)
            ledger.prepare(slug)
            report = SendReport(seconds=0.5)
            number = 0
            while batch := ledger.claim_batch(slug, 2):
                number += 1
                if self.stop_after is not None and report.sent >= self.stop_after:
                    ledger.release(batch.id)
                    report.stopped = DeliveryError("SendGrid did not take the request")
                    break
                if number == self.fail_batch:
                    ledger.mark_failed(batch.id, "400 bad request")
                    report.failed += len(batch.recipients)
                    continue
                ledger.mark_sent(batch.id, "msg")
                report.sent += len(batch.recipients)
            return report
        finally:
            conn.close()


def counts(settings: Settings, slug: str) -> dict[str, int]:
    conn = open_database(settings.database)
    try:
        return {k: v for k, v in Ledger(conn).counts(slug).items() if v}
    finally:
        conn.close()


# --------------------------------------------------------------------------- what is sent


def test_nothing_due_does_nothing_and_says_nothing(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    sender = FakeSender()
    said: list[IssueRun] = []
    result = run_due(settings, at("2026-12-01 06:59"), send=sender, on_issue=said.append)
    assert result.exit_code is ExitCode.NOTHING_DUE
    assert (result.issues, said, sender.calls) == ([], [], [])


def test_nothing_scheduled_is_nothing_due(settings: Settings) -> None:
    assert run_due(settings, DUE, send=FakeSender()).exit_code is ExitCode.NOTHING_DUE


def test_a_due_issue_is_sent_with_one_line(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    plan(settings, "b", "2026-12-02 08:00")
    sender = FakeSender()
    result = run_due(settings, at("2026-12-01 07:02"), send=sender)
    assert result.exit_code is ExitCode.SENT
    assert [run.line for run in result.issues] == [
        "sent a to 5 recipients (due 2026-12-01 08:00 CET Europe/Berlin, 2 min late, 0.5 s)"
    ]
    assert sender.calls == [("a", None)]
    assert counts(settings, "a") == {"sent": 5}


def test_a_sent_issue_is_not_sent_again(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    sender = FakeSender()
    run_due(settings, DUE, send=sender)
    later = run_due(settings, DUE + dt.timedelta(minutes=5), send=sender)
    assert later.exit_code is ExitCode.NOTHING_DUE
    assert len(sender.calls) == 1


def test_a_partial_send_is_resumed_by_the_next_run(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    first = run_due(settings, DUE, send=FakeSender(stop_after=2))
    assert first.exit_code is ExitCode.PARTLY_FAILED
    assert first.issues[0].outcome is Outcome.PARTLY
    assert first.issues[0].line == (
        "partly sent a: 2 sent, 0 failed, 0 unknown — stopped: SendGrid did not take the request"
    )
    assert counts(settings, "a") == {"sent": 2, "pending": 3}
    second = run_due(settings, DUE + dt.timedelta(minutes=5), send=FakeSender())
    assert second.exit_code is ExitCode.SENT
    assert second.issues[0].line.startswith("sent a to 3 recipients, 2 had it already (due ")
    assert counts(settings, "a") == {"sent": 5}


def _killed_after_claiming(settings: Settings, size: int) -> None:
    """Issue "a" planned, then a run that claimed `size` recipients and was SIGKILLed
    before its request's answer: those rows stay `sending`."""
    plan(settings, "a", "2026-12-01 08:00")
    conn = open_database(settings.database)
    try:
        ledger = Ledger(conn)
        ledger.prepare("a")
        assert ledger.claim_batch("a", size) is not None
    finally:
        conn.close()


def test_a_run_killed_mid_batch_resumes_and_leaves_that_batch_unknown(
    settings: Settings,
) -> None:
    _killed_after_claiming(settings, 2)
    result = run_due(settings, DUE, send=FakeSender())
    # Not complete: the exit code says so, and the line says what to do.
    assert result.exit_code is ExitCode.PARTLY_FAILED
    assert result.issues[0].line == (
        "partly sent a: 3 sent, 2 left unknown by an interrupted run (they may have it) — "
        "see `newsletter status a`; `newsletter send a --resend-unknown` sends to them again"
    )
    # The interrupted batch may have gone out: never resent, the others are.
    assert counts(settings, "a") == {"sent": 3, "unknown": 2}


def test_a_run_that_finds_only_unknown_recipients_left_is_not_a_success(
    settings: Settings,
) -> None:
    _killed_after_claiming(settings, 5)  # everyone

    result = run_due(settings, DUE, send=FakeSender())

    assert result.exit_code is ExitCode.DELIVERY_FAILED
    assert result.issues[0].line.startswith(
        "failed a: 0 sent, 5 left unknown by an interrupted run (they may have it)"
    )
    assert counts(settings, "a") == {"unknown": 5}


def test_failed_recipients_make_a_partly_failed_run(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    result = run_due(settings, DUE, send=FakeSender(fail_batch=2))
    assert result.exit_code is ExitCode.PARTLY_FAILED
    assert result.issues[0].line == (
        "partly sent a: 3 sent, 2 failed, 0 unknown — see `newsletter status a`; "
        "`newsletter send a` retries the failed"
    )
    # Not retried by cron: failures need someone to look.
    assert run_due(settings, DUE, send=FakeSender()).exit_code is ExitCode.NOTHING_DUE


def test_an_issue_that_cannot_be_sent_fails_and_the_others_go_on(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    plan(settings, "b", "2026-12-01 08:00")

    class MissingIssue(FakeSender):
        def __call__(self, settings: Settings, slug: str, handover: Handover | None) -> SendReport:
            if slug == "a":
                raise UserError("file not found", where="issues/a/issue.yaml", fix="create it")
            return super().__call__(settings, slug, handover)

    result = run_due(settings, DUE, send=MissingIssue())
    assert [(run.issue, run.outcome) for run in result.issues] == [
        ("a", Outcome.FAILED),
        ("b", Outcome.SENT),
    ]
    assert result.issues[0].line == "failed a: issues/a/issue.yaml: file not found — create it"
    assert result.exit_code is ExitCode.PARTLY_FAILED


def test_an_empty_list_is_said_once_and_not_retried(settings: Settings) -> None:
    conn = open_database(settings.database)
    try:
        conn.execute("UPDATE subscribers SET status = 'unsubscribed'")
    finally:
        conn.close()
    plan(settings, "a", "2026-12-01 08:00")
    sender = FakeSender()
    result = run_due(settings, DUE, send=sender)
    assert result.exit_code is ExitCode.FAILED
    assert result.issues[0].line == (
        "nothing sent a: no active subscriber to send it to — `newsletter send a` sends it "
        "once the list has some"
    )
    assert run_due(settings, DUE, send=sender).exit_code is ExitCode.NOTHING_DUE
    assert len(sender.calls) == 1


def test_a_failure_with_nothing_sent_is_failed(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    result = run_due(settings, DUE, send=FakeSender(refuse=DeliveryError("SendGrid is down")))
    assert result.exit_code is ExitCode.FAILED
    assert result.exit_code == 3


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AuthError("SendGrid refused the API key (401)"), ExitCode.AUTH),
        (ConfigError("SENDGRID_API_KEY is not set", where=".env"), ExitCode.CONFIG),
        (LockBusy("another send is running in this workspace"), ExitCode.LOCK_BUSY),
    ],
)
def test_a_refusal_every_issue_would_meet_stops_the_run(
    settings: Settings, error: Exception, code: ExitCode
) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    plan(settings, "b", "2026-12-01 08:00")
    sender = FakeSender(refuse=error)
    result = run_due(settings, DUE, send=sender)
    assert [call[0] for call in sender.calls] == ["a"]
    assert result.exit_code is code
    assert result.stopped is error


def test_auto_without_a_key_is_refused_rather_than_writing_an_outbox(root: Path) -> None:
    config = root / "newsletter.toml"
    config.write_text(config.read_text().replace('backend = "outbox"', 'backend = "auto"'))
    settings = load_settings(root, environ={})
    plan(settings, "a", "2026-12-01 08:00")
    sender = FakeSender()
    result = run_due(settings, DUE, send=sender)
    assert result.exit_code is ExitCode.CONFIG
    assert result.stopped is not None
    assert result.stopped.line() == (
        f"{root}/.env: SENDGRID_API_KEY is not set, so `auto` would only write .eml files to "
        'the outbox — add the key to .env, or set [delivery] backend = "outbox" if that is meant'
    )
    assert sender.calls == []
    assert "SENDGRID_API_KEY is not set" in (root / "logs" / "newsletter.log").read_text()


# --------------------------------------------------------------------------- too late


def test_a_too_late_issue_is_reported_once_and_never_sent(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    sender = FakeSender()
    first = run_due(settings, DUE + dt.timedelta(hours=7, minutes=30), send=sender)
    assert first.exit_code is ExitCode.FAILED
    assert first.issues[0].outcome is Outcome.TOO_LATE
    assert first.issues[0].line == (
        "not sent a: it was due 2026-12-01 08:00 CET Europe/Berlin, 7 h 30 min ago, more than "
        "max_lateness_hours (6 h) — send it by hand with `newsletter send a`, or schedule it "
        "again"
    )
    again = run_due(settings, DUE + dt.timedelta(hours=8), send=sender)
    assert (again.exit_code, again.issues) == (ExitCode.NOTHING_DUE, [])
    assert sender.calls == []


def test_a_partly_sent_issue_that_became_too_late_says_how_far_it_got(
    settings: Settings,
) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    run_due(settings, DUE, send=FakeSender(stop_after=2))
    result = run_due(settings, DUE + dt.timedelta(hours=7), send=FakeSender())
    assert "; 2 sent, 3 pending — send it by hand" in result.issues[0].line


def test_max_lateness_comes_from_the_settings(root: Path) -> None:
    config = root / "newsletter.toml"
    config.write_text(
        config.read_text().replace("max_lateness_hours = 6", "max_lateness_hours = 1")
    )
    settings = load_settings(root, environ={})
    plan(settings, "a", "2026-12-01 08:00")
    result = run_due(settings, DUE + dt.timedelta(minutes=61), send=FakeSender())
    assert result.issues[0].outcome is Outcome.TOO_LATE


def test_rescheduling_a_too_late_issue_makes_it_due_again(settings: Settings) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    run_due(settings, DUE + dt.timedelta(hours=7), send=FakeSender())
    conn = open_schedule_database(settings)
    try:
        now = DUE + dt.timedelta(hours=7)
        schedule(conn, "a", parse_send_time("2026-12-01 16:00", BERLIN, now))
    finally:
        conn.close()
    result = run_due(settings, at("2026-12-01 15:00"), send=FakeSender())
    assert result.exit_code is ExitCode.SENT


# --------------------------------------------------------------------------- the lock


def _hold(lock_class: str, path: Path) -> subprocess.Popen[str]:
    code = textwrap.dedent(
        f"""
        import sys, time, filelock
        lock = filelock.{lock_class}({str(path)!r})
        lock.acquire(timeout=0)
        print("held", flush=True)
        time.sleep(120)
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


@pytest.fixture
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


def _where_the_lock_is(settings: Settings) -> str:
    """What a busy message names: the lock file, or the PostgreSQL database (no password)."""
    target = settings.database
    return str(settings.workspace / DUE_LOCK_FILE if isinstance(target, Path) else target)


def test_a_second_run_says_the_lock_is_busy_and_sends_nothing(engine_settings: Settings) -> None:
    settings = engine_settings
    plan(settings, "a", "2026-12-01 08:00")
    with due_lock(settings, at("2026-12-01 06:58")):
        sender = FakeSender()
        result = run_due(settings, DUE, send=sender)
    assert result.exit_code is ExitCode.LOCK_BUSY
    assert result.exit_code == 5
    assert sender.calls == []
    assert not (settings.workspace / LOCK_OWNER_FILE).exists()  # gone with the lock
    assert result.stopped is not None
    assert result.stopped.line() == (
        f"{_where_the_lock_is(settings)}: another `newsletter send --due` is running "
        f"(pid {os.getpid()} on {os.uname().nodename}, since 2026-12-01 06:58:00 UTC) — "
        "nothing to do: that run sends what is due; the lock goes when it ends"
    )


def test_a_lock_held_by_another_process_is_busy(
    settings: Settings, holders: list[subprocess.Popen[str]]
) -> None:
    holders.append(_hold("FileLock", settings.workspace / DUE_LOCK_FILE))
    with pytest.raises(LockBusy), due_lock(settings, DUE):
        pass


def _hold_due_lock(settings: Settings) -> subprocess.Popen[str]:
    """Another process in the cron lock (`due_lock` as `send --due` takes it), at DUE."""
    url = settings.secrets.database_url
    environ = {"DATABASE_URL": url.get_secret_value()} if url else {}
    code = textwrap.dedent(
        f"""
        import datetime as dt, time
        from pathlib import Path
        from newsletter.config import load_settings
        from newsletter.schedule.due_lock import due_lock
        settings = load_settings(Path({str(settings.workspace)!r}), environ={environ!r})
        with due_lock(settings, dt.datetime.fromisoformat({DUE.isoformat()!r})):
            print("held", flush=True)
            time.sleep(120)
        """
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_the_lock_of_a_killed_run_goes_with_it_on_either_engine(
    engine_settings: Settings, holders: list[subprocess.Popen[str]]
) -> None:
    """Held by another process (on PostgreSQL: another host, as far as the server can
    tell), the lock turns a second run away at once, naming the holder; when the holder is
    SIGKILLed the lock goes (PostgreSQL: with its session), and the next run sends."""
    settings = engine_settings
    plan(settings, "a", "2026-12-01 08:00")
    holder = _hold_due_lock(settings)
    holders.append(holder)
    sender = FakeSender()
    busy = run_due(settings, DUE, send=sender)
    assert (busy.exit_code, sender.calls) == (ExitCode.LOCK_BUSY, [])
    assert busy.stopped is not None
    assert busy.stopped.line() == (
        f"{_where_the_lock_is(settings)}: another `newsletter send --due` is running "
        f"(pid {holder.pid} on {os.uname().nodename}, since 2026-12-01 07:00:00 UTC) — "
        "nothing to do: that run sends what is due; the lock goes when it ends"
    )
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    conn = open_database(settings.database)
    try:
        wait_for_other_sessions(conn)  # the server ends the killed session asynchronously
    finally:
        conn.close()
    result = run_due(settings, DUE, send=sender)
    assert result.exit_code is ExitCode.SENT, result.stopped
    assert [slug for slug, _ in sender.calls] == ["a"]


@pytest.mark.parametrize("lock_class", ["FileLock", "SoftFileLock"])
def test_a_lock_left_by_a_killed_process_does_not_block(
    settings: Settings, holders: list[subprocess.Popen[str]], lock_class: str
) -> None:
    """flock is dropped by the kernel; the soft fallback's file names a dead PID."""
    import filelock

    holder = _hold(lock_class, settings.workspace / DUE_LOCK_FILE)
    holders.append(holder)
    chosen = getattr(filelock, lock_class)
    with pytest.raises(LockBusy), due_lock(settings, DUE, lock_class=chosen):
        pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (settings.workspace / DUE_LOCK_FILE).exists()  # left behind
    plan(settings, "a", "2026-12-01 08:00")
    result = run_due(settings, DUE, send=FakeSender(), lock_class=chosen)
    assert result.exit_code is ExitCode.SENT


# --------------------------------------------------------------------------- the log


def test_the_log_has_the_detail_and_never_the_key(root: Path) -> None:
    key = "SG.very-secret-key-0123456789"
    settings = load_settings(root, environ={"SENDGRID_API_KEY": key})
    plan(settings, "a", "2026-12-01 08:00")
    refusal = AuthError(f"SendGrid refused the key {key} (401)")
    run_due(settings, DUE, send=FakeSender(refuse=refusal))
    text = (root / "logs" / "newsletter.log").read_text(encoding="utf-8")
    assert key not in text
    assert "SendGrid refused the key SG.*** (401)" in text
    assert "run at 2026-12-01T07:00:00+00:00: 1 scheduled, 1 due, 0 too late" in text
    assert "run finished: exit 4 (auth)" in text


def test_the_log_blots_out_the_key_in_every_quoted_form(root: Path) -> None:
    key = "SG.secret\u00e9-key\t0123456789"  # a key with an escape-worthy character
    settings = load_settings(root, environ={"SENDGRID_API_KEY": "SG.placeholder"})
    settings = settings.model_copy(
        update={"secrets": settings.secrets.model_copy(update={"sendgrid_api_key": SecretStr(key)})}
    )
    plan(settings, "a", "2026-12-01 08:00")
    refusal = AuthError(f"Invalid header value {key!r} and {json.dumps(key)}")
    run_due(settings, DUE, send=FakeSender(refuse=refusal))
    text = (root / "logs" / "newsletter.log").read_text(encoding="utf-8")
    for form in (key, repr(key)[1:-1], json.dumps(key)[1:-1]):
        assert form not in text
    assert "secret" not in text


def test_an_unexpected_error_is_one_line_with_the_traceback_in_the_log(
    settings: Settings,
) -> None:
    plan(settings, "a", "2026-12-01 08:00")
    result = run_due(settings, DUE, send=FakeSender(refuse=RuntimeError("boom")))
    assert result.exit_code is ExitCode.FAILED
    assert result.stopped is not None
    assert result.stopped.line() == (
        "unexpected error: RuntimeError: boom — details in "
        f"{settings.workspace}/logs/newsletter.log"
    )
    text = (settings.workspace / "logs" / "newsletter.log").read_text()
    assert "Traceback (most recent call last)" in text


def test_the_log_rotates(settings: Settings) -> None:
    import logging.handlers

    from newsletter.schedule.run_log import LOG_BACKUPS, LOG_MAX_BYTES, run_log

    with run_log(settings):
        handlers = logging.getLogger("newsletter").handlers
        rotating = [h for h in handlers if isinstance(h, logging.handlers.RotatingFileHandler)]
        assert [(h.maxBytes, h.backupCount) for h in rotating] == [(LOG_MAX_BYTES, LOG_BACKUPS)]
        for _ in range(LOG_MAX_BYTES // 500 + 10):
            logging.getLogger("newsletter.schedule").info("x" * 500)
    assert (settings.workspace / "logs" / "newsletter.log.1").exists()
    assert logging.getLogger("newsletter").handlers == []


def test_a_workspace_where_the_log_cannot_be_written_is_one_line(settings: Settings) -> None:
    (settings.workspace / "logs").write_text("not a directory")
    with pytest.raises(UserError) as caught:
        run_due(settings, DUE, send=FakeSender())
    assert caught.value.line().startswith(
        f"{settings.workspace}/logs/newsletter.log: cannot write the log ("
    )
    assert caught.value.line().endswith(
        "make the workspace writable by the user that runs newsletter (e.g. cron's user)"
    )
