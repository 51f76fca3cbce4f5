"""The schedule commands as a user runs them, and the cron run through the real delivery core.

Commands that read the real clock get times relative to it; the cron run itself is given
its clock. Sends go through `newsletter.deliver.sender` and the official client to the local stub.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from newsletter.config import load_settings
from newsletter.errors import ExitCode
from newsletter.schedule.cron import Outcome, run_due
from newsletter.schedule.send_time import Zone, parse_send_time
from newsletter.schedule.store import open_schedule_database, schedule
from tests._cli import run
from tests._workspace import (
    SECRET,
    add_subscribers,
    ledger_states,
    numbered,
    sample_workspace,
    stub_env,
    write_env,
)
from tests.sendgrid_stub import (
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")


def berlin(delta: dt.timedelta) -> dt.datetime:
    """Berlin wall time `delta` from now, to the minute (for commands on the real clock)."""
    moment = dt.datetime.now(UTC) + delta
    return moment.astimezone(BERLIN).replace(second=0, microsecond=0)


def use_backend(root: Path, name: str) -> Path:
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    assert 'backend = "auto"' in text
    config.write_text(text.replace('backend = "auto"', f'backend = "{name}"'), encoding="utf-8")
    return root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = use_backend(sample_workspace(tmp_path / "ws", "batch_size = 2"), "outbox")
    add_subscribers(root, numbered(5))
    return root


# --------------------------------------------------------------------------- schedule


def test_schedule_says_when_in_which_zone_and_where_the_zone_came_from(root: Path) -> None:
    when = berlin(dt.timedelta(days=2))
    text = f"{when:%Y-%m-%d %H:%M}"
    outcome = run(root, "schedule", "sample", "--at", text, "--tz", "Europe/Berlin")
    assert outcome.exit_code == 0, outcome.stderr
    first = outcome.stdout.splitlines()[0]
    utc = when.astimezone(UTC)
    assert first.startswith(
        f"scheduled sample for {text} {when:%Z} Europe/Berlin (time zone from --tz) = "
        f"{utc:%Y-%m-%d %H:%M} UTC, in 1 d 23 h"
    )
    listing = run(root, "schedule", "--list")
    assert listing.exit_code == 0
    header, line = listing.stdout.splitlines()
    assert header.split() == ["ISSUE", "SEND", "AT", "UTC", "VIA", "STATUS"]
    assert line.startswith(f"sample  {text} {when:%Z} Europe/Berlin  {utc:%Y-%m-%d %H:%M} UTC")
    assert "cron  scheduled: in 1 d 23 h" in line


def test_without_tz_the_system_zone_is_used_and_named(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    when = (dt.datetime.now(UTC) + dt.timedelta(days=3)).astimezone(ZoneInfo("Asia/Tokyo"))
    outcome = run(root, "schedule", "sample", "--at", f"{when:%Y-%m-%d} 09:00")
    assert outcome.exit_code == 0, outcome.stderr
    assert "09:00 JST Asia/Tokyo (time zone from the TZ environment variable)" in outcome.stdout


def test_rescheduling_says_what_it_was(root: Path) -> None:
    first = berlin(dt.timedelta(days=2))
    second = berlin(dt.timedelta(days=3))
    run(root, "schedule", "sample", "--at", f"{first:%Y-%m-%d %H:%M}", "--tz", "Europe/Berlin")
    outcome = run(
        root, "schedule", "sample", "--at", f"{second:%Y-%m-%d %H:%M}", "--tz", "Europe/Berlin"
    )
    assert f"(was {first:%Y-%m-%d %H:%M %Z} Europe/Berlin)" in outcome.stdout


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--at", "2020-01-01 08:00", "--tz", "UTC"],
            "error: --at: 2020-01-01 08:00 UTC is in the past",
        ),
        (
            ["--at", "2099-01-01 08:00", "--tz", "Europe/Berln"],
            "error: --tz: unknown time zone 'Europe/Berln' — did you mean Europe/Berlin?",
        ),
        (["--at", "next friday"], "error: --at: cannot read 'next friday' as a date and time"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(root: Path, args: list[str], error: str) -> None:
    outcome = run(root, "schedule", "sample", *args)
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith(error)
    assert len(outcome.stderr.splitlines()) == 1
    assert "Traceback" not in outcome.stderr


def set_send_at(root: Path, value: str) -> Path:
    """Give the sample issue a send_at line (after `date:`, line 6); return its issue.yaml."""
    path = root / "issues" / "sample" / "issue.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count("\ndate: ") == 1
    path.write_text(text.replace("\ndate: 2026-12-01\n", f"\ndate: 2026-12-01\nsend_at: {value}\n"))
    return path


def test_without_at_the_issues_send_at_is_read_in_the_zone(root: Path) -> None:
    when = berlin(dt.timedelta(days=2))
    text = f"{when:%Y-%m-%d %H:%M}"
    set_send_at(root, text)
    outcome = run(root, "schedule", "sample", "--tz", "Europe/Berlin")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[0].startswith(
        f"scheduled sample for {text} {when:%Z} Europe/Berlin (send_at in issue.yaml, time "
        f"zone from --tz) = {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC, in 1 d 23 h"
    )


def test_a_send_at_with_an_offset_is_that_instant_shown_in_the_zone(root: Path) -> None:
    plus_five = dt.timezone(dt.timedelta(hours=5))
    when = (dt.datetime.now(UTC) + dt.timedelta(days=2)).astimezone(plus_five)
    when = when.replace(second=0, microsecond=0)
    set_send_at(root, f"{when:%Y-%m-%dT%H:%M:%S}+05:00")  # a YAML timestamp
    outcome = run(root, "schedule", "sample", "--tz", "Europe/Berlin")
    assert outcome.exit_code == 0, outcome.stderr
    local = when.astimezone(BERLIN)
    assert outcome.stdout.splitlines()[0].startswith(
        f"scheduled sample for {local:%Y-%m-%d %H:%M %Z} Europe/Berlin "
        f"(send_at {when:%Y-%m-%dT%H:%M}+05:00 in issue.yaml) = "
        f"{when.astimezone(UTC):%Y-%m-%d %H:%M} UTC, in 1 d 23 h"
    )


def test_at_wins_over_send_at(root: Path) -> None:
    set_send_at(root, "2020-01-01 08:00")  # in the past: would be refused if read
    when = berlin(dt.timedelta(days=2))
    outcome = run(
        root, "schedule", "sample", "--at", f"{when:%Y-%m-%d %H:%M}", "--tz", "Europe/Berlin"
    )
    assert outcome.exit_code == 0, outcome.stderr
    assert "(time zone from --tz)" in outcome.stdout


def test_without_at_or_send_at_the_error_says_to_give_one(root: Path) -> None:
    outcome = run(root, "schedule", "sample", "--tz", "UTC")
    assert outcome.exit_code == 2
    assert outcome.stderr.splitlines() == [
        'error: say when: give --at "YYYY-MM-DD HH:MM", or set send_at in '
        f"{root}/issues/sample/issue.yaml — see `newsletter schedule --help`"
    ]


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("2020-01-01 08:00", "6: 2020-01-01 08:00 UTC is in the past (it is now "),
        ("2099-01-01", "6: send_at: needs a time of day, not only a date — write it as "),
        ("soon", "6: send_at: is not a real date and time"),
    ],
)
def test_a_bad_send_at_is_one_line_pointing_at_it(root: Path, value: str, error: str) -> None:
    path = set_send_at(root, value)
    outcome = run(root, "schedule", "sample", "--tz", "UTC")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith(f"error: {path}:{error}")
    assert len(outcome.stderr.splitlines()) == 1


def test_an_issue_that_does_not_exist_is_not_scheduled(root: Path) -> None:
    outcome = run(root, "schedule", "nope", "--at", "2099-01-01 08:00", "--tz", "UTC")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {root}/issues/nope/issue.yaml: no issue 'nope' — start it with "
        "`newsletter new nope`\n"
    )


def test_usage_mistakes_are_usage_errors(root: Path) -> None:
    assert run(root, "schedule").exit_code == 2
    assert run(root, "schedule", "sample").exit_code == 2
    assert run(root, "schedule", "sample", "--list").exit_code == 2


def test_via_sendgrid_needs_the_sendgrid_backend(root: Path) -> None:
    outcome = run(
        root, "schedule", "sample", "--at", "2099-01-01 08:00", "--tz", "UTC", "--via-sendgrid"
    )
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: --via-sendgrid: --via-sendgrid needs the sendgrid")


def test_list_when_nothing_is_scheduled(root: Path) -> None:
    outcome = run(root, "schedule", "--list")
    assert outcome.stdout == (
        "nothing is scheduled — `newsletter schedule SLUG --at TIME` schedules an issue\n"
    )


def test_unschedule_and_cancel_of_a_cron_schedule(root: Path) -> None:
    when = berlin(dt.timedelta(days=2))
    at = f"{when:%Y-%m-%d %H:%M}"
    run(root, "schedule", "sample", "--at", at, "--tz", "Europe/Berlin")
    outcome = run(root, "unschedule", "sample")
    assert outcome.stdout == f"unscheduled sample (was {at} {when:%Z} Europe/Berlin)\n"
    again = run(root, "unschedule", "sample")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: issue 'sample' is not scheduled")
    run(root, "schedule", "sample", "--at", at, "--tz", "Europe/Berlin")
    cancelled = run(root, "cancel", "sample")
    assert cancelled.stdout.startswith("unscheduled sample (was ")
    assert "nothing had been handed to SendGrid yet" in cancelled.stdout


def test_cancel_at_sendgrid_from_the_command_line(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    root = sample_workspace(tmp_path / "ws", "batch_size = 2")
    stub_env(root, sendgrid_stub.url)
    add_subscribers(root, numbered(3))
    when = berlin(dt.timedelta(minutes=45))
    outcome = run(
        root,
        "schedule",
        "sample",
        "--at",
        f"{when:%Y-%m-%d %H:%M}",
        "--tz",
        "Europe/Berlin",
        "--via-sendgrid",
    )
    assert outcome.exit_code == 0, outcome.stderr
    assert "can stop it until 10 minutes before" in outcome.stdout
    # What a run does at handover, without the mail (see test_schedule_sendgrid.py).
    from tests.schedule.test_schedule_run import FakeSender

    settings = load_settings(root)
    result = run_due(settings, dt.datetime.now(UTC), send=FakeSender())
    assert result.exit_code is ExitCode.SENT, result.issues
    cancelled = run(root, "cancel", "sample")
    assert cancelled.exit_code == 0, cancelled.stderr
    (batch_id,) = sendgrid_stub.batches
    assert cancelled.stdout == (
        f"cancelled sample at SendGrid (batch {batch_id}): nobody gets it at "
        f"{when:%Y-%m-%d %H:%M %Z} Europe/Berlin; 3 recipients are pending again — "
        "`newsletter schedule sample --at ...` or `newsletter send sample` sends it later\n"
    )
    assert sendgrid_stub.scheduled_sends == {batch_id: "cancel"}


# --------------------------------------------------------------------------- real sends


def _plan(root: Path, slug: str, made: dt.datetime, local: str) -> None:
    settings = load_settings(root)
    conn = open_schedule_database(settings)
    try:
        schedule(conn, slug, parse_send_time(local, Zone("Europe/Berlin", "--tz"), made))
    finally:
        conn.close()


MADE = dt.datetime(2026, 11, 1, tzinfo=UTC)
DUE = dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


@pytest.fixture
def stub_root(tmp_path: Path, sendgrid_stub: SendGridStub) -> Path:
    root = sample_workspace(tmp_path / "ws", "batch_size = 2")
    stub_env(root, sendgrid_stub.url)
    add_subscribers(root, numbered(5))
    _plan(root, "sample", MADE, "2026-12-01 08:00")
    return root


def test_a_due_issue_reaches_every_subscriber_once_through_sendgrid(
    stub_root: Path, sendgrid_stub: SendGridStub
) -> None:
    result = run_due(load_settings(stub_root), DUE + dt.timedelta(minutes=3))
    assert result.exit_code is ExitCode.SENT, result.issues
    (line,) = [issue.line for issue in result.issues]
    assert line.startswith(
        "sent sample to 5 recipients (due 2026-12-01 08:00 CET Europe/Berlin, 3 min late, "
    )
    assert sendgrid_stub.deliveries(issue="sample") == {email: 1 for email in numbered(5)}
    again = run_due(load_settings(stub_root), DUE + dt.timedelta(minutes=8))
    assert again.exit_code is ExitCode.NOTHING_DUE
    assert sendgrid_stub.deliveries(issue="sample") == {email: 1 for email in numbered(5)}


def test_a_send_stopped_part_way_is_resumed_by_the_next_run(
    stub_root: Path, sendgrid_stub: SendGridStub
) -> None:
    # One batch goes out, then the key is refused (for both batches then in flight at once).
    sendgrid_stub.plan("202", "401", "401")
    first = run_due(load_settings(stub_root), DUE)
    assert first.exit_code is ExitCode.PARTLY_FAILED
    assert first.issues[0].outcome is Outcome.PARTLY
    assert "2 sent, 0 failed, 0 unknown — stopped: SendGrid refused the API key" in (
        first.issues[0].line
    )
    assert sum(sendgrid_stub.deliveries(issue="sample").values()) == 2
    second = run_due(load_settings(stub_root), DUE + dt.timedelta(minutes=5))
    assert second.exit_code is ExitCode.SENT
    assert second.issues[0].line.startswith("sent sample to 3 recipients, 2 had it already")
    assert sendgrid_stub.deliveries(issue="sample") == {email: 1 for email in numbered(5)}
    assert set(ledger_states(stub_root, "sample").values()) == {"sent"}


def test_a_missing_issue_at_send_time_is_logged_and_failed(stub_root: Path) -> None:
    shutil.rmtree(stub_root / "issues" / "sample")
    result = run_due(load_settings(stub_root), DUE)
    assert result.exit_code is ExitCode.FAILED
    assert result.issues[0].line.startswith("failed sample: ")
    assert "issue.yaml" in result.issues[0].line
    log = (stub_root / "logs" / "newsletter.log").read_text()
    assert "failed sample: " in log
    assert "Traceback" not in log


def test_a_missing_api_key_at_send_time_is_a_config_error(tmp_path: Path) -> None:
    root = use_backend(sample_workspace(tmp_path / "ws"), "sendgrid")
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    add_subscribers(root, numbered(2))
    _plan(root, "sample", MADE, "2026-12-01 08:00")
    result = run_due(load_settings(root), DUE)
    assert result.exit_code is ExitCode.CONFIG
    assert result.issues[0].line == (
        f"failed sample: {root / '.env'}: SENDGRID_API_KEY is not set — add "
        "SENDGRID_API_KEY=... to it; use a key with Mail Send permission, or send with "
        "--backend outbox"
    )
    assert "SENDGRID_API_KEY is not set" in (root / "logs" / "newsletter.log").read_text()


# --------------------------------------------------------------------------- permissions


SETPRIV = shutil.which("setpriv")
# Root writes anywhere; without these capabilities it meets file permissions like anyone.
DROP_OVERRIDES = "-dac_override,-dac_read_search,-fowner"


@pytest.fixture
def readonly_workspace(tmp_path: Path) -> Iterator[Path]:
    """A workspace whose directories and files are read-only."""
    root = use_backend(sample_workspace(tmp_path / "ws"), "outbox")
    for path in [root, *root.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        yield root
    finally:
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def _without_write_rights(*args: str) -> subprocess.CompletedProcess[str]:
    newsletter = str(Path(sys.executable).with_name("newsletter"))
    command = [newsletter, *args]
    if os.geteuid() == 0:
        if SETPRIV is None:
            pytest.skip("root needs setpriv to give up its file-permission override")
        command = [SETPRIV, f"--bounding-set={DROP_OVERRIDES}", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (["schedule", "--list"], "newsletter.db"),
        (["unschedule", "sample"], "newsletter.db"),
    ],
)
def test_a_workspace_that_is_not_writable_is_one_line(
    readonly_workspace: Path, args: list[str], where: str
) -> None:
    result = _without_write_rights("-w", str(readonly_workspace), *args)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"error: {readonly_workspace}/{where}: "), result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1
