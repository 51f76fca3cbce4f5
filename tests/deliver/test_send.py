"""`newsletter send` through the CLI against the SendGrid stub: the ledger, faults, reruns."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.cli import deliver as deliver_cli
from tests._cli import Outcome, run
from tests._workspace import (
    API_KEY,
    SECRET,
    add_subscribers,
    database,
    ledger_states,
    numbered,
    sample_workspace,
    stub_env,
    write_env,
)
from tests.deliver.test_delivery_smtp import PASSWORD, USER, Server
from tests.deliver.test_delivery_smtp import smtp_server as smtp_server  # the fixture
from tests.sendgrid_stub import SendGridStub

SUBJECT = "Albania raid on Ashraf 3 sparks protests across Europe"
# The sample's links are example.org placeholders: the build's warning comes first.
PLACEHOLDERS = (
    "warning: [placeholder] 11 article link(s) are example.org placeholders, e.g. "
    "https://example.org/placeholder/iranians-hold-rallies-to-protest-police-raid-on-oppositions"
    "-albania-based-hq — replace them with the real addresses before sending\n"
)


def _timeless(text: str) -> str:
    return re.sub(r"in \d+\.\d s", "in T s", text)


def send(root: Path, *args: str, input: str | None = None) -> Outcome:
    outcome = run(root, "send", "sample", *args, input=input)
    return Outcome(outcome.exit_code, _timeless(outcome.stdout), outcome.stderr)


def workspace_with(tmp_path: Path, stub: SendGridStub, count: int, delivery: str = "") -> Path:
    root = sample_workspace(tmp_path / "ws", delivery)
    stub_env(root, stub.url)
    add_subscribers(root, numbered(count))
    return root


def delivered_once(stub: SendGridStub, emails: list[str]) -> bool:
    return stub.deliveries(issue="sample") == {email: 1 for email in emails}


HEADER = [
    "synced suppressions: 0 global unsubscribes, 0 bounces, 0 spam reports, 0 invalid emails",
    "issue       sample",
    f"subject     {SUBJECT}",
    "from        The Balkan Brief <newsletter@example.org>",
]


def test_send_reaches_every_active_subscriber_once_in_batches(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 2500)
    add_subscribers(root, ["gone@example.org"], status="unsubscribed")
    outcome = send(root, "--yes")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines() == [
        *HEADER,
        f"backend     sendgrid ({stub.url})",
        "recipients  2,500 (2,500 active subscribers)",
        "sent 2,500, skipped 0, failed 0, unknown 0 in T s (3 requests)",
    ]
    assert delivered_once(stub, numbered(2500))
    sizes = [len(r.body["personalizations"]) for r in stub.accepted]
    assert sorted(sizes, reverse=True) == [1000, 1000, 500]  # after the first, in flight at once
    first = stub.accepted[0].body
    assert [p["to"][0]["email"] for p in first["personalizations"]] == numbered(1000)
    assert first["custom_args"] == {"issue": "sample"}
    assert first["categories"] == ["newsletter", "sample"]  # the issue's own, for its stats
    assert set(ledger_states(root, "sample").values()) == {"sent"}


def test_a_finished_issue_is_not_sent_again_without_resend(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 3)
    assert send(root, "--yes").exit_code == 0
    again = send(root, "--yes")
    assert again.exit_code == 1
    assert again.stderr == (
        "error: issue 'sample' was already sent to 3 recipients — nothing to do; "
        "`newsletter send sample --new-subscribers` sends it to those who subscribed since, "
        "`--resend` to every active subscriber again\n"
    )
    assert delivered_once(stub, numbered(3))
    resent = send(root, "--yes", "--resend")
    assert resent.exit_code == 0, resent.stderr
    assert "sent 3, skipped 0, failed 0, unknown 0 in T s (1 request)" in resent.stdout
    assert stub.deliveries(issue="sample") == {email: 2 for email in numbered(3)}


def test_a_400_fails_its_batch_and_the_send_goes_on(tmp_path: Path, stub: SendGridStub) -> None:
    # One request at a time: the planned 400 is for the second batch, not any second request.
    root = workspace_with(tmp_path, stub, 5, "batch_size = 2\nconcurrency = 1")
    stub.plan("202", "400")
    outcome = send(root, "--yes")
    assert outcome.exit_code == 3
    assert outcome.stdout.splitlines()[-4:] == [
        "sent 3, skipped 0, failed 2, unknown 0 in T s (3 requests)",
        "failed — refused; a rerun of `newsletter send sample` tries them again:",
        "  reader000002@example.org: SendGrid answered 400: invalid request",
        "  reader000003@example.org: SendGrid answered 400: invalid request",
    ]
    assert outcome.stderr == (
        PLACEHOLDERS
        + "error: 2 recipient(s) of sample not confirmed sent — see `newsletter status sample`\n"
    )
    rerun = send(root, "--yes")
    assert rerun.exit_code == 0, rerun.stderr
    assert "recipients  2 (5 active subscribers, 3 already sent)" in rerun.stdout
    assert "sent 2, skipped 0, failed 0, unknown 0 in T s (1 request)" in rerun.stdout
    assert delivered_once(stub, numbered(5))


def test_a_lost_answer_leaves_the_batch_unknown_and_a_rerun_sends_only_the_rest(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 5, "batch_size = 2")
    stub.plan("202", "drop_before_response", "drop_before_response")
    outcome = send(root, "--yes")
    assert outcome.exit_code == 3
    lines = outcome.stdout.splitlines()
    assert lines[-5:] == [
        "sent 2, skipped 0, failed 0, unknown 3 in T s (3 requests)",
        "unknown — the request may have gone out; not resent unless "
        "`newsletter send sample --resend-unknown`:",
        "  reader000002@example.org",
        "  reader000003@example.org",
        "  reader000004@example.org",
    ]
    # The stub did take the dropped requests: everyone has the issue once already.
    assert delivered_once(stub, numbered(5))
    rerun = send(root, "--yes")
    # Nothing left to send, but the issue is not complete: cron must not read it as done.
    assert rerun.exit_code == 3
    assert rerun.stdout.splitlines()[-2:] == [
        "recipients  0 (5 active subscribers, 2 already sent, 3 unknown, not resent)",
        "nothing to send",
    ]
    assert rerun.stderr.splitlines()[-1].startswith(
        "error: issue 'sample' is not complete: 3 recipients unknown (the request may have "
        "gone out) — see `newsletter status sample`; "
    )
    assert delivered_once(stub, numbered(5))
    forced = send(root, "--yes", "--resend-unknown")
    assert forced.exit_code == 0, forced.stderr
    assert "sent 3, skipped 0, failed 0, unknown 0 in T s (2 requests)" in forced.stdout
    counts = stub.deliveries(issue="sample")
    assert [counts[e] for e in numbered(5)] == [1, 1, 2, 2, 2]


def test_401_stops_at_once_with_exit_4_and_sends_nothing(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 5, "batch_size = 2")
    stub_env(root, stub.url, api_key="SG.revoked-key")
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 4
    assert outcome.stderr == PLACEHOLDERS + (
        "error: SendGrid refused the API key (401: The provided authorization grant is "
        "invalid, expired, or revoked) — check SENDGRID_API_KEY in .env: it must be valid "
        "and have the Mail Send permission; nothing of this batch was sent\n"
    )
    assert "sent 0, skipped 0, failed 0, unknown 0 in T s (1 request)" in outcome.stdout
    assert len(stub.requests) == 1
    assert set(ledger_states(root, "sample").values()) == {"pending"}
    stub_env(root, stub.url)
    assert send(root, "--yes").exit_code == 0
    assert delivered_once(stub, numbered(5))


def test_413_splits_the_batch_and_sends_each_half(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 6, "batch_size = 4")
    stub.plan("413")
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 0, outcome.stderr
    assert "sent 6, skipped 0, failed 0, unknown 0 in T s (4 requests)" in outcome.stdout
    assert [len(r.body["personalizations"]) for r in stub.accepted] == [2, 2, 2]
    assert delivered_once(stub, numbered(6))


def test_413_for_a_single_recipient_fails_it(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 2, "batch_size = 2")
    stub.plan("413", "413", "202")
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 3
    assert "sent 1, skipped 0, failed 1, unknown 0 in T s (3 requests)" in outcome.stdout
    assert "  reader000000@example.org: SendGrid answered 413: content too large" in outcome.stdout


def test_429_and_500_are_waited_out(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 3, "batch_size = 2")
    stub.rate_limit_reset_offset = 0
    stub.plan("429", "202", "500")
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 0, outcome.stderr
    assert "sent 3, skipped 0, failed 0, unknown 0 in T s (4 requests)" in outcome.stdout
    assert "retrying in" in outcome.stderr
    assert delivered_once(stub, numbered(3))


def test_no_terminal_and_no_yes_refuses(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 2)
    outcome = send(root)
    assert outcome.exit_code == 1
    assert outcome.stderr == PLACEHOLDERS + (
        "error: no terminal to confirm the send — run it with --yes to send without "
        "asking (as cron does)\n"
    )
    assert stub.accepted == []


def test_the_editor_confirms_on_a_terminal(
    tmp_path: Path, stub: SendGridStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = workspace_with(tmp_path, stub, 2)
    monkeypatch.setattr(deliver_cli, "_interactive", lambda: True)
    declined = send(root, input="n\n")
    assert declined.exit_code == 1
    assert declined.stdout.splitlines()[-2:] == [
        "Send sample to 2 recipients? [y/N]: n",
        "not sent",
    ]
    assert stub.accepted == []
    accepted = send(root, input="y\n")
    assert accepted.exit_code == 0
    assert delivered_once(stub, numbered(2))


def test_sync_runs_first_and_keeps_suppressed_addresses_out(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 4, "asm_group_id = 42")
    stub.suppressions["bounces"] = [
        {"email": "READER000001@example.org", "created": 1, "reason": "550", "status": "5.1.1"}
    ]
    stub.suppressions["spam_reports"] = [
        {"email": "reader000002@example.org", "created": 1, "ip": "192.0.2.1"}
    ]
    stub.group_suppressions[42] = ["reader000003@example.org", "stranger@example.org"]
    outcome = send(root, "--yes")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[:2] == [
        "synced suppressions: 0 global unsubscribes, 2 group 42 unsubscribes, 1 bounces, "
        "1 spam reports, 0 invalid emails",
        "marked 1 from group 42 unsubscribes, 1 from bounces, 1 from spam reports",
    ]
    assert "recipients  1 (1 active subscriber)" in outcome.stdout
    assert delivered_once(stub, ["reader000000@example.org"])
    assert stub.accepted[0].body["asm"] == {"group_id": 42}


def test_subscribers_sync_pages_through_long_lists(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 1200)
    stub.suppressions["unsubscribes"] = [{"email": email, "created": 1} for email in numbered(1100)]
    outcome = run(root, "subscribers", "sync")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines() == [
        "synced suppressions: 1,100 global unsubscribes, 0 bounces, 0 spam reports, "
        "0 invalid emails",
        "marked 1,100 from global unsubscribes",
    ]
    paths = [r.path for r in stub.requests if r.path.startswith("/v3/suppression/unsubscribes")]
    assert len(paths) == 3
    assert "unsubscribed" in run(root, "subscribers", "stats").stdout


def test_the_api_key_appears_nowhere(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 3, "batch_size = 1")
    secret_key = "SG.very-secret-key-value"
    stub.api_key = secret_key
    stub_env(root, stub.url, api_key=secret_key)
    stub.plan("202", "400", "drop_before_response")
    outcome = send(root, "--yes")
    assert outcome.exit_code == 3
    assert secret_key not in outcome.stdout + outcome.stderr
    db_bytes = b"".join(p.read_bytes() for p in root.glob("newsletter.db*"))
    assert secret_key.encode() not in db_bytes


def test_dry_run_builds_and_checks_every_request_and_changes_nothing(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 2500)
    outcome = send(root, "--dry-run")
    assert outcome.exit_code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert lines[0] == "dry run of sendgrid send: nothing sent, nothing recorded"
    assert lines[1] == "recipients  2,500 (2,500 active subscribers)"
    assert re.fullmatch(r"requests    3 \(largest [\d,]+ bytes, 1,000 personalizations\)", lines[2])
    assert re.fullmatch(
        r"largest     [\d,]+ bytes of HTML \(reader000000@example.org\); ~[\d,]+ with click "
        r"tracking of 14 links \(Gmail clips from 102,000\)",
        lines[3],
    )
    assert lines[4] == "ok: every request is valid"
    assert stub.requests == []
    assert "has no ledger" in run(root, "status", "sample").stderr


def test_dry_run_reports_the_clip_limit_on_the_worst_case(
    tmp_path: Path, stub: SendGridStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = workspace_with(tmp_path, stub, 2)
    monkeypatch.setattr("newsletter.deliver.dry_run.TRACKED_LINK_CHARS", 8000)
    outcome = send(root, "--dry-run")
    assert outcome.exit_code == 1
    assert re.search(
        r"problem: the longest message \(reader00000\d@example.org\) would be about [\d,]+ "
        r"bytes with click tracking; Gmail clips from 102,000 — shorten the issue",
        outcome.stderr,
    )
    assert outcome.stderr.endswith("error: the dry run found 1 problem(s) — see the lines above\n")


def test_dry_run_names_missing_settings_as_problems(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, numbered(1))
    outcome = send(root, "--dry-run", "--backend", "sendgrid")
    assert outcome.exit_code == 1
    # No .env in this workspace: the message says so and how to make one.
    no_env = f"the environment (there is no {root / '.env'})"
    assert f"problem: {no_env}: SENDGRID_API_KEY is not set — create {root / '.env'}" in (
        outcome.stderr
    )
    assert f"warning: {no_env}: NEWSLETTER_UNSUBSCRIBE_SECRET is not set" in outcome.stderr


def test_a_missing_key_names_the_env_file_that_exists(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    (root / ".env").write_text("SMTP_HOST=\n", encoding="utf-8")
    add_subscribers(root, numbered(1))
    outcome = send(root, "--dry-run", "--backend", "sendgrid")
    assert outcome.exit_code == 1
    assert f"problem: {root / '.env'}: SENDGRID_API_KEY is not set — add SENDGRID_API_KEY=..." in (
        outcome.stderr
    )


def test_a_broken_env_line_is_one_line_with_the_file_and_line(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    (root / ".env").write_text('X=1\nSENDGRID_API_KEY="SG.secret-part\nY=2\n', encoding="utf-8")
    outcome = send(root, "--dry-run", "--backend", "sendgrid")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {root / '.env'}:2: a line is not NAME=value (an unclosed quote, or a stray "
        "word) — write it as NAME=value, closing any quote on the same line\n"
    )


def test_test_send_goes_to_the_address_only_and_is_recorded_nowhere(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 3)
    outcome = run(
        root,
        "send",
        "sample",
        "--test",
        "Me@Example.org",
        "--test",
        "reader000001@example.org",
        "--test",
        "ME@example.org",
    )
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == (
        "sent a test of sample to Me@Example.org, reader000001@example.org via "
        f"sendgrid ({stub.url}); nothing recorded as sent\n"
    )
    (record,) = stub.accepted
    assert record.body["subject"] == f"[TEST] {SUBJECT}"
    assert record.body["custom_args"] == {"issue": "sample", "test": "true"}
    assert record.body["categories"] == ["newsletter"]  # not counted in the issue's stats
    names = [p["to"][0].get("name") for p in record.body["personalizations"]]
    assert names == [None, "Name reader000001"]
    assert ledger_states(root, "sample") == {}
    assert send(root, "--yes").exit_code == 0


def test_a_bad_test_address_is_one_clear_line(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    outcome = run(root, "send", "sample", "--test", "not-an-address")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        "error: --test 'not-an-address' is not an email address (invalid address "
        "'not-an-address': An email address must have an @-sign.)\n"
    )


def test_the_outbox_quick_start_needs_no_credentials(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, ["ann@example.org", "bob@example.org"])
    outcome = send(root, "--yes")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines() == [
        "issue       sample",
        f"subject     {SUBJECT}",
        "from        The Balkan Brief <newsletter@example.org>",
        "backend     outbox (outbox/)",
        "recipients  2 (2 active subscribers)",
        "sent 2, skipped 0, failed 0, unknown 0 in T s (2 files)",
    ]
    assert outcome.stderr == PLACEHOLDERS + (
        "warning: NEWSLETTER_UNSUBSCRIBE_SECRET is not set: the outbox's unsubscribe links "
        "are signed with this workspace's own key in .newsletter-secret (set it in .env "
        "before a real send, the same on every machine that sends or serves the list)\n"
    )
    files = sorted(p.name for p in (root / "outbox" / "sample").iterdir())
    assert files == ["ann@example.org.eml", "bob@example.org.eml"]
    key = root / ".newsletter-secret"
    assert key.stat().st_mode & 0o777 == 0o600
    # The same key signs the next rehearsal: links of earlier outbox files keep working.
    first = key.read_text()
    assert send(root, "--yes", "--resend").exit_code == 0
    assert key.read_text() == first


def test_a_real_backend_needs_the_unsubscribe_secret(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 1)
    write_env(root, SENDGRID_API_KEY=API_KEY, SENDGRID_API_HOST=stub.url)
    outcome = send(root, "--yes")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith(
        f"error: {root / '.env'}: NEWSLETTER_UNSUBSCRIBE_SECRET is not set — add "
        "NEWSLETTER_UNSUBSCRIBE_SECRET=... to it; unsubscribe links are signed with it"
    )
    assert stub.accepted == []


def test_skipped_counts_subscribers_gone_since_the_last_run(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 3)
    stub.plan("401")
    assert send(root, "--yes", "--no-sync").exit_code == 4
    conn = database(root)
    conn.execute(
        "UPDATE subscribers SET status = 'unsubscribed' WHERE email = ?", (numbered(1)[0],)
    )
    conn.close()
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 0, outcome.stderr
    assert "sent 2, skipped 1, failed 0, unknown 0 in T s (1 request)" in outcome.stdout


def test_send_through_smtp_reaches_everyone_once(
    tmp_path: Path, smtp_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = sample_workspace(tmp_path / "ws")
    write_env(
        root,
        SMTP_HOST=smtp_server.host,
        SMTP_PORT=str(smtp_server.port),
        SMTP_USERNAME=USER,
        SMTP_PASSWORD=PASSWORD,
        NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET,
    )
    monkeypatch.setenv("SMTP_CA_FILE", str(smtp_server.ca_file))
    add_subscribers(root, numbered(3))
    outcome = send(root, "--yes", "--backend", "smtp")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout.splitlines()[-3:] == [
        f"backend     smtp ({smtp_server.host}:{smtp_server.port}, STARTTLS)",
        "recipients  3 (3 active subscribers)",
        "sent 3, skipped 0, failed 0, unknown 0 in T s (3 messages)",
    ]
    assert [to for _, to, _ in smtp_server.mailbox.messages] == [[e] for e in numbered(3)]
    assert len(smtp_server.mailbox.sessions) == 1
    assert send(root, "--yes", "--backend", "smtp").exit_code == 1
    assert len(smtp_server.mailbox.messages) == 3


def test_send_needs_an_issue_unless_due(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    outcome = run(root, "send")
    assert outcome.exit_code == 2
    assert "give the issue to send, e.g. `newsletter send 2026-12-01`" in outcome.stderr


@pytest.mark.parametrize("command", [["send"], ["subscribers", "sync"]])
def test_help_shows_an_example(command: list[str]) -> None:
    outcome = run(None, *command, "--help")
    assert outcome.exit_code == 0
    assert "Example:  newsletter " + " ".join(command) in outcome.stdout


def test_an_empty_list_sends_nothing_and_says_how_to_fill_it(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 0)
    outcome = send(root, "--yes")
    assert outcome.exit_code == 0
    assert outcome.stdout.splitlines()[-1] == (
        "nothing to send: the list has no active subscribers — add some with "
        "`newsletter subscribers import FILE.csv`"
    )
    add_subscribers(root, numbered(2))
    later = send(root, "--yes")
    assert later.exit_code == 0, later.stderr
    assert delivered_once(stub, numbered(2))


def test_a_run_that_found_nobody_does_not_count_as_sent(tmp_path: Path, stub: SendGridStub) -> None:
    from newsletter.config import load_settings
    from newsletter.deliver.options import SendOptions
    from newsletter.deliver.sender import Sender

    root = workspace_with(tmp_path, stub, 0)
    with Sender(load_settings(root), "sample", SendOptions(sync=False)) as sender:
        sender.preflight()
        assert sender.send().sent == 0  # as the cron job calls it, without asking
    add_subscribers(root, numbered(2))
    outcome = send(root, "--yes")
    assert outcome.exit_code == 0, outcome.stderr
    assert delivered_once(stub, numbered(2))


def test_a_handover_holds_every_request_until_send_at_in_one_batch(
    tmp_path: Path, stub: SendGridStub
) -> None:
    import time

    from newsletter.config import load_settings
    from newsletter.deliver.options import SendOptions
    from newsletter.deliver.sender import Sender

    root = workspace_with(tmp_path, stub, 5, "batch_size = 2")
    send_at = int(time.time()) + 3600
    options = SendOptions(sync=False, send_at=send_at, batch_id="bmV3c2xldHRlcg")
    with Sender(load_settings(root), "sample", options) as sender:
        sender.preflight()
        assert sender.send().sent == 5
    bodies = [record.body for record in stub.accepted]
    assert {(body["send_at"], body["batch_id"]) for body in bodies} == {(send_at, "bmV3c2xldHRlcg")}
    assert len(bodies) == 3


def test_only_sendgrid_can_hold_a_send(tmp_path: Path) -> None:
    from newsletter.config import load_settings
    from newsletter.deliver.options import SendOptions
    from newsletter.deliver.sender import Sender
    from newsletter.errors import UserError

    root = sample_workspace(tmp_path / "ws")
    with pytest.raises(UserError, match="only SendGrid can hold a send until its time"):
        Sender(load_settings(root), "sample", SendOptions(send_at=1, batch_id="b"))


def test_a_real_send_refuses_example_placeholders(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 2)
    config = root / "newsletter.toml"
    config.write_text(config.read_text().replace("allow_placeholders = true\n", ""))
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 1
    assert outcome.stderr.splitlines()[-1] == (
        "error: issue 'sample' still has example placeholders: 11 article link(s) in issue.yaml,"
        " [web] base_url in newsletter.toml, [sender] email in newsletter.toml, [sender]"
        " reply_to in newsletter.toml, [sender] postal_address in newsletter.toml — replace"
        " them with real addresses, or rehearse with `--backend outbox`; nothing was sent"
    )
    assert stub.accepted == []


def test_a_link_set_apart_from_the_web_base_is_named_itself(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 2)
    config = root / "newsletter.toml"
    text = config.read_text().replace("allow_placeholders = true\n", "")
    text = text.replace(
        'base_url = "https://example.org"', 'base_url = "https://news.balkanbrief.eu"'
    )
    text = text.replace(
        'language = "en"', 'language = "en"\nunsubscribe_url = "https://example.com/u"'
    )
    config.write_text(text)
    outcome = send(root, "--yes", "--no-sync")
    assert outcome.exit_code == 1
    line = outcome.stderr.splitlines()[-1]
    assert "[newsletter] unsubscribe_url in newsletter.toml" in line
    assert "[web] base_url" not in line and "web_base_url" not in line
    assert stub.accepted == []


def test_sync_can_be_turned_off_in_the_settings(tmp_path: Path, stub: SendGridStub) -> None:
    root = workspace_with(tmp_path, stub, 2, "sync_suppressions = false")
    outcome = send(root, "--yes")
    assert outcome.exit_code == 0, outcome.stderr
    assert "synced suppressions" not in outcome.stdout
    assert [r.path for r in stub.requests] == ["/v3/mail/send"]


def test_a_refused_key_and_a_missing_permission_say_different_things() -> None:
    from newsletter.deliver.backends.sendgrid.client import refused

    bad_key = refused(401, "authorization required", "list /v3/suppression/bounces", "X")
    assert bad_key.line() == (
        "SendGrid refused the API key for list /v3/suppression/bounces (401: authorization"
        " required) — check SENDGRID_API_KEY in .env: the key is wrong, expired or revoked"
    )
    no_scope = refused(
        403, "access forbidden", "list /v3/suppression/bounces", "Suppressions: Read"
    )
    assert no_scope.line() == (
        "the API key may not list /v3/suppression/bounces (403: access forbidden) — give the key"
        " the Suppressions: Read permission in SendGrid's API key settings"
    )
    assert bad_key.exit_code == no_scope.exit_code == 4


def test_the_backend_option_offers_exactly_the_registered_backends() -> None:
    from newsletter.deliver import backends as delivery

    offered = {name.value for name in deliver_cli.BackendName}
    assert offered == {"auto", *delivery.names()}


def test_an_unknown_backend_is_a_usage_error(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    outcome = run(root, "send", "sample", "--backend", "bogus")
    assert outcome.exit_code == 2
    assert "'bogus' is not one of 'auto', 'sendgrid', 'smtp', 'outbox'" in outcome.stderr


def test_a_test_send_says_when_it_retries_instead_of_waiting_in_silence(
    tmp_path: Path, stub: SendGridStub
) -> None:
    root = workspace_with(tmp_path, stub, 1)
    stub.plan("503")

    outcome = run(root, "send", "sample", "--test", "me@example.org")

    assert outcome.exit_code == 0, outcome.stderr
    assert re.search(r"^warning: .*503.*; retrying in \d+\.\d s$", outcome.stderr, re.M)
    assert len(stub.accepted) == 1


def test_the_summary_shows_a_non_ascii_sender_as_written(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    config = root / "newsletter.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('[sender]\nname = "The Balkan Brief"', '[sender]\nname = "Zoë’s Brief"'),
        encoding="utf-8",
    )
    add_subscribers(root, numbered(1))
    outcome = send(root, "--backend", "outbox", "--yes")
    assert outcome.exit_code == 0, outcome.stderr
    assert "from        Zoë’s Brief <newsletter@example.org>" in outcome.stdout
    assert "=?utf-8?" not in outcome.stdout
