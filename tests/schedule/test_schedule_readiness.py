"""`schedule` refuses what would fail when due; a due issue that fails is reported once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from newsletter.config import load_settings
from newsletter.schedule.send_time import Zone, parse_send_time
from newsletter.schedule.store import open_schedule_database, schedule
from tests._cli import run
from tests._workspace import add_subscribers, numbered, sample_workspace, write_env
from tests.schedule.test_schedule_cli import use_backend

ZONE = Zone("Europe/Berlin", "--tz")
SECRET = "a-long-unsubscribe-secret-for-tests"


def _at_in_two_days() -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    return f"{moment.astimezone(ZONE.info):%Y-%m-%d %H:%M}"


def _workspace(tmp_path: Path) -> Path:
    root = use_backend(sample_workspace(tmp_path / "ws"), "outbox")
    write_env(root, NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET)
    add_subscribers(root, numbered(3))
    return root


def _empty_the_issue(root: Path) -> None:
    """The sample issue with every story taken out: valid YAML, but nothing to send."""
    issue = root / "issues" / "sample" / "issue.yaml"
    text = issue.read_text(encoding="utf-8")
    issue.write_text(text[: text.index("\nsections:")] + "\nsections: []\n", encoding="utf-8")


def test_an_issue_that_fails_its_checks_is_not_scheduled(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    _empty_the_issue(root)

    outcome = run(root, "schedule", "sample", "--at", _at_in_two_days(), "--tz", ZONE.name)

    assert outcome.exit_code == 1
    (line,) = outcome.stderr.splitlines()
    assert line.endswith(
        "issue.yaml:7: sections: must not be empty — correct the value in issue.yaml"
    )
    assert "nothing is scheduled" in run(root, "schedule", "--list").stdout


def test_a_workspace_that_cannot_send_is_not_scheduled(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")  # backend auto, and no key

    outcome = run(root, "schedule", "sample", "--at", _at_in_two_days(), "--tz", ZONE.name)

    assert outcome.exit_code == 1
    assert "SENDGRID_API_KEY is not set, so `auto` would only write .eml files" in outcome.stderr
    assert "nothing is scheduled" in run(root, "schedule", "--list").stdout


def _due_a_minute_ago(root: Path) -> None:
    due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).astimezone(ZONE.info)
    conn = open_schedule_database(load_settings(root))
    try:
        when = parse_send_time(f"{due:%Y-%m-%d %H:%M:%S}", ZONE, due - dt.timedelta(hours=1))
        schedule(conn, "sample", when)
    finally:
        conn.close()


def test_a_due_issue_that_fails_is_reported_once_and_listed_as_failed(tmp_path: Path) -> None:
    root = _workspace(tmp_path)
    issue = root / "issues" / "sample" / "issue.yaml"
    good = issue.read_text(encoding="utf-8")
    _due_a_minute_ago(root)
    _empty_the_issue(root)  # broken after it was scheduled

    first = run(root, "send", "--due")
    second = run(root, "send", "--due")
    listed = run(root, "schedule", "--list")
    issue.write_text(good, encoding="utf-8")
    fixed = run(root, "send", "--due")

    assert first.exit_code == 3
    assert "failed sample: " in first.stderr and "sections: must not be empty" in first.stderr
    assert (second.stdout, second.stderr) == ("", "")
    (row,) = [line for line in listed.stdout.splitlines() if line.startswith("sample")]
    assert "failed: " in row and "sections: must not be empty" in row
    assert fixed.exit_code == 0, fixed.stderr
    assert len(list((root / "outbox" / "sample").glob("*.eml"))) == 3
    assert "sent:" in run(root, "schedule", "--list").stdout
