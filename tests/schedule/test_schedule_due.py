"""`newsletter send --due`, the cron entry, as cron runs it: output, exit codes, overlap.

These run the real command on the real clock, so schedules are made relative to now.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings
from newsletter.schedule.due_lock import due_lock
from newsletter.schedule.send_time import Zone, parse_send_time
from newsletter.schedule.store import open_schedule_database, schedule
from tests._cli import run
from tests._workspace import (
    API_KEY,
    add_subscribers,
    numbered,
    sample_workspace,
    stub_env,
    write_env,
)
from tests.sendgrid_stub import (
    SendGridStub,
    StubProcess,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

UTC = dt.UTC
ZONE = Zone("Europe/Berlin", "--tz")


def plan_ago(root: Path, slug: str, minutes: float) -> None:
    """Schedule `slug` for `minutes` ago (as if scheduled an hour before that)."""
    due = (dt.datetime.now(UTC) - dt.timedelta(minutes=minutes)).astimezone(ZONE.info)
    conn = open_schedule_database(load_settings(root))
    try:
        when = parse_send_time(f"{due:%Y-%m-%d %H:%M:%S}", ZONE, due - dt.timedelta(hours=1))
        schedule(conn, slug, when)
    finally:
        conn.close()


@pytest.fixture
def root(tmp_path: Path, sendgrid_stub: SendGridStub) -> Path:
    root = sample_workspace(tmp_path / "ws", "batch_size = 2")
    stub_env(root, sendgrid_stub.url)
    add_subscribers(root, numbered(5))
    return root


@pytest.fixture
def engine_root(engine: str, tmp_path: Path, sendgrid_stub: SendGridStub) -> Path:
    """`root` on the test's engine (see the `engine` fixture)."""
    root = sample_workspace(tmp_path / "ws", "batch_size = 2")
    stub_env(root, sendgrid_stub.url)
    add_subscribers(root, numbered(5))
    return root


def test_nothing_due_prints_nothing_at_all(root: Path) -> None:
    outcome = run(root, "send", "--due")
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (7, "", "")
    plan_ago(root, "sample", -90)  # in an hour and a half
    outcome = run(root, "send", "--due")
    assert (outcome.exit_code, outcome.stdout, outcome.stderr) == (7, "", "")


def test_a_due_issue_is_one_line_and_exit_0(root: Path, sendgrid_stub: SendGridStub) -> None:
    plan_ago(root, "sample", 2)
    outcome = run(root, "send", "--due")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stderr == ""
    (line,) = outcome.stdout.splitlines()
    assert line.startswith("sent sample to 5 recipients (due ")
    assert sendgrid_stub.deliveries(issue="sample") == {email: 1 for email in numbered(5)}
    again = run(root, "send", "--due")
    assert (again.exit_code, again.stdout, again.stderr) == (7, "", "")


def test_an_outbox_rehearsal_never_stands_in_for_the_scheduled_send(
    root: Path, sendgrid_stub: SendGridStub
) -> None:
    # Scheduled first, then rehearsed: cron still sends it for real.
    plan_ago(root, "sample", 2)
    rehearsal = run(root, "send", "sample", "--backend", "outbox", "--yes")
    assert rehearsal.exit_code == 0, rehearsal.stderr
    listed = run(root, "schedule", "--list")
    assert "due" in listed.stdout and "0 sent" in listed.stdout, listed.stdout
    outcome = run(root, "send", "--due")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("sent sample to 5 recipients (due ")
    assert sendgrid_stub.deliveries(issue="sample") == {email: 1 for email in numbered(5)}


def test_an_issue_rehearsed_first_can_still_be_scheduled(
    root: Path, sendgrid_stub: SendGridStub
) -> None:
    assert run(root, "send", "sample", "--backend", "outbox", "--yes").exit_code == 0
    scheduled = run(root, "schedule", "sample", "--at", "2099-01-01 08:00", "--tz", "UTC")
    assert scheduled.exit_code == 0, scheduled.stderr


def test_too_late_is_said_once_with_exit_3(root: Path, sendgrid_stub: SendGridStub) -> None:
    plan_ago(root, "sample", 7 * 60)
    outcome = run(root, "send", "--due")
    assert outcome.exit_code == 3
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("error: not sent sample: it was due ")
    assert "send it by hand with `newsletter send sample`" in outcome.stderr
    assert sendgrid_stub.deliveries() == {}
    again = run(root, "send", "--due")
    assert (again.exit_code, again.stdout, again.stderr) == (7, "", "")


def test_a_refused_key_is_exit_4_with_one_line(tmp_path: Path, sendgrid_stub: SendGridStub) -> None:
    root = sample_workspace(tmp_path / "ws", "batch_size = 2")
    stub_env(root, sendgrid_stub.url, api_key="SG.revoked")
    add_subscribers(root, numbered(3))
    plan_ago(root, "sample", 1)
    outcome = run(root, "send", "--due")
    assert outcome.exit_code == 4
    assert outcome.stdout == ""
    assert outcome.stderr.startswith("error: failed sample: ")
    assert len(outcome.stderr.splitlines()) == 1
    assert "SG.revoked" not in (root / "logs" / "newsletter.log").read_text()


def test_a_missing_unsubscribe_secret_stops_the_run_at_the_first_issue(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    root = sample_workspace(tmp_path / "ws", "batch_size = 2")
    shutil.copytree(root / "issues" / "sample", root / "issues" / "second")
    write_env(root, SENDGRID_API_KEY=API_KEY, SENDGRID_API_HOST=sendgrid_stub.url)
    add_subscribers(root, numbered(3))
    plan_ago(root, "sample", 2)
    plan_ago(root, "second", 1)
    outcome = run(root, "send", "--due")
    assert outcome.exit_code == 1  # settings wrong: not 3, one failure per due issue
    assert outcome.stdout == ""
    assert outcome.stderr.splitlines() == [
        f"error: failed sample: {root / '.env'}: NEWSLETTER_UNSUBSCRIBE_SECRET is not set — "
        "add NEWSLETTER_UNSUBSCRIBE_SECRET=... to it; unsubscribe links are signed with it; "
        "use a long random string, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
    ]
    assert sendgrid_stub.accepted == []


def test_a_busy_lock_is_exit_5_with_one_line(engine_root: Path) -> None:
    root = engine_root
    plan_ago(root, "sample", 1)
    settings = load_settings(root)
    # The lock file on SQLite; on PostgreSQL the database (the lock is the server's).
    where = root / ".newsletter-due.lock" if _on_sqlite(settings) else settings.database
    with due_lock(settings, dt.datetime.now(UTC)):
        outcome = run(root, "send", "--due")
    assert outcome.exit_code == 5
    assert outcome.stdout == ""
    assert outcome.stderr.startswith(
        f"error: {where}: another `newsletter send --due` is running "
        f"(pid {os.getpid()} on {socket.gethostname()}, since "
    ), outcome.stderr
    assert "pg-test-" not in outcome.stderr  # never the password of DATABASE_URL


def _on_sqlite(settings: Settings) -> bool:
    return isinstance(settings.database, Path)


def test_send_due_takes_no_issue(root: Path) -> None:
    assert run(root, "send", "sample", "--due").exit_code == 2


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["sample"],
            "--due takes no issue: it sends every scheduled issue that is due; "
            "`newsletter send sample` sends sample now",
        ),
        (
            ["--test", "me@example.org"],
            "--test does not apply to --due: a test goes out at once to the addresses given; "
            "run `newsletter send SLUG --test ADDR`",
        ),
        (
            ["--dry-run"],
            "--dry-run does not apply to --due: a dry run checks one issue; "
            "run `newsletter send SLUG --dry-run`",
        ),
        (
            ["--backend", "smtp"],
            "--backend does not apply to --due: it sends with [delivery] backend in "
            "newsletter.toml (SendGrid for an issue scheduled --via-sendgrid)",
        ),
        (
            ["--resend"],
            "--resend does not apply to --due: it never sends an issue twice; send it again "
            "by hand with `newsletter send SLUG --resend`",
        ),
        (
            ["--resend-unknown"],
            "--resend-unknown does not apply to --due: recipients left unknown are resent "
            "only by hand, with `newsletter send SLUG --resend-unknown`",
        ),
        (
            ["--no-sync"],
            "--no-sync does not apply to --due: a scheduled send never skips SendGrid's "
            "suppression lists",
        ),
    ],
)
def test_send_due_refuses_what_it_would_ignore_with_one_line(
    root: Path, sendgrid_stub: SendGridStub, args: list[str], line: str
) -> None:
    plan_ago(root, "sample", 1)
    outcome = run(root, "send", "--due", *args)
    assert outcome.exit_code == 2
    assert outcome.stdout == ""
    assert outcome.stderr.splitlines() == [f"error: {line} — see `newsletter send --help`"]
    assert sendgrid_stub.accepted == []


def test_send_due_accepts_yes_since_it_never_asks(root: Path) -> None:
    assert run(root, "send", "--due", "--yes").exit_code == 7


def test_two_runs_at_once_send_each_subscriber_the_issue_exactly_once(
    engine: str, tmp_path: Path
) -> None:
    """Two real processes start together, as when a slow run meets the next cron tick: on
    SQLite in one workspace; on PostgreSQL from two workspaces (two hosts' crons) sharing
    one database, where only the server's lock can keep them apart."""
    with StubProcess(port_file=tmp_path / "stub.port") as stub:
        stub.configure(delay=0.3)  # 15 requests take 4.5 s: the runs overlap even on a busy CI
        hosts = ("ws",) if engine == "sqlite" else ("host-a", "host-b")
        roots = [sample_workspace(tmp_path / host, "batch_size = 2") for host in hosts]
        for root in roots:
            stub_env(root, stub.url)
        emails = numbered(30)
        add_subscribers(roots[0], emails)
        plan_ago(roots[0], "sample", 1)
        newsletter = str(Path(sys.executable).with_name("newsletter"))
        runs = [
            subprocess.Popen(
                [newsletter, "send", "--due"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "NEWSLETTER_WORKSPACE": str(roots[n % len(roots)])},
            )
            for n in range(2)
        ]
        outputs = [process.communicate(timeout=120) for process in runs]
        codes = sorted(process.returncode for process in runs)
        assert codes == [0, 5], outputs
        sender = next(
            out for process, out in zip(runs, outputs, strict=True) if not process.returncode
        )
        waiter = next(out for process, out in zip(runs, outputs, strict=True) if process.returncode)
        assert sender[0].startswith("sent sample to 30 recipients (due "), sender
        assert sender[1] == ""
        assert waiter == ("", waiter[1])
        assert "another `newsletter send --due` is running" in waiter[1]
        assert stub.deliveries(issue="sample") == {email: 1 for email in emails}


def test_via_sendgrid_hands_over_with_send_at_and_a_batch_then_cancels(
    root: Path, sendgrid_stub: SendGridStub
) -> None:
    when = (dt.datetime.now(UTC) + dt.timedelta(minutes=40)).astimezone(ZONE.info)
    at = f"{when:%Y-%m-%d %H:%M}"
    scheduled = run(root, "schedule", "sample", "--at", at, "--tz", ZONE.name, "--via-sendgrid")
    assert scheduled.exit_code == 0, scheduled.stderr
    outcome = run(root, "send", "--due")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.startswith("handed sample to SendGrid for 5 recipients: it goes out ")
    (batch_id,) = sendgrid_stub.batches
    send_at = int(dt.datetime.fromisoformat(f"{at}").replace(tzinfo=ZONE.info).timestamp())
    bodies = [record.body for record in sendgrid_stub.accepted]
    assert len(bodies) == 3  # five recipients in batches of two
    assert {(body["send_at"], body["batch_id"]) for body in bodies} == {(send_at, batch_id)}
    assert run(root, "send", "--due").exit_code == 7
    cancelled = run(root, "cancel", "sample")
    assert cancelled.exit_code == 0, cancelled.stderr
    assert sendgrid_stub.scheduled_sends == {batch_id: "cancel"}
    assert "5 recipients are pending again" in cancelled.stdout
