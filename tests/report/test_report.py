"""`issues` and `report`: a real send to the stand-in, then SendGrid's events posted, signed,
through the real /webhooks/sendgrid route, then the numbers read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run
from tests._workspace import add_subscribers, sample_workspace, stub_env
from tests.report.conftest import READERS
from tests.sendgrid_stub import (
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")


def test_report_json_equals_what_the_stream_holds(reported: Path) -> None:
    outcome = run(reported, "report", "sample", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    data = json.loads(outcome.stdout)
    assert data["sent"] == 6
    assert data["has_events"] is True
    assert (data["delivered"], data["deferred"]) == (5, 1)
    assert (data["bounced_hard"], data["bounced_soft"], data["dropped"]) == (1, 0, 0)
    assert data["spam_reports"] == 1
    assert data["opens_unique"] == 2  # r1 and r3; r1's second open counted once
    assert data["opens_machine_only"] == 1  # r2: an Apple Mail Privacy Protection open
    assert data["clicks_unique"] == 3  # r1, r3, r4 (web version), not r5 (unsubscribe link)
    assert data["click_to_open"] == 100.0  # of the 3 who opened (r4 clicked without an open)
    assert data["rates_of"] == "delivered"
    assert data["rates"]["opens_unique"] == 40.0
    assert data["unsubscribes"] == {"one-click": 1, "sendgrid group": 1}
    stories = {item["title"][:24]: (item["unique"], item["total"]) for item in data["stories"]}
    assert stories["Iranians hold rallies to"] == (2, 3)
    assert stories["After the “snapback,” lar"[:24]] == (1, 1)
    assert sum(unique for unique, _ in stories.values()) == 3
    others = {item["kind"]: (item["unique"], item["total"]) for item in data["other_links"]}
    assert others == {"web version": (1, 1), "unsubscribe": (1, 1), "other": (1, 1)}
    assert "opens_per_hour" not in data  # the hourly series is the page's chart only
    assert "Apple Mail Privacy Protection" in data["machine_open_caveat"]


def test_report_prints_a_table_with_the_same_numbers(reported: Path) -> None:
    outcome = run(reported, "report", "sample")
    assert outcome.exit_code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert any(line.split()[:2] == ["delivered", "5"] for line in lines)
    assert any(line.startswith("unique opens (people)") and "40.0%" in line for line in lines)
    assert "unsubscribes by way: one-click 1, sendgrid group 1" in outcome.stdout


def test_issues_lists_every_issue_with_its_state(reported: Path) -> None:
    draft = reported / "issues" / "draft"
    draft.mkdir()
    (draft / "issue.yaml").write_text(
        (reported / "issues" / "sample" / "issue.yaml").read_text(encoding="utf-8")
    )
    outcome = run(reported, "issues", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    lines = {line["slug"]: line for line in json.loads(outcome.stdout)}
    assert lines["sample"]["state"].startswith("sent on ")
    assert lines["sample"]["recipients"] == 6
    assert lines["sample"]["delivered_pct"] == round(100 * 5 / 6, 1)
    assert lines["sample"]["unique_clicks_pct"] == 60.0
    assert lines["sample"]["unsubscribes"] == 2  # one-click and SendGrid group
    assert lines["draft"]["state"] == "draft"
    table = run(reported, "issues")
    assert "sample" in table.stdout and "sent on" in table.stdout


def test_bad_input_is_one_line(reported: Path) -> None:
    missing = run(reported, "report", "nope")
    assert missing.exit_code == 1 and len(missing.stderr.splitlines()) == 1
    draft = reported / "issues" / "draft"
    draft.mkdir()
    (draft / "issue.yaml").write_text(
        (reported / "issues" / "sample" / "issue.yaml").read_text(encoding="utf-8")
    )
    never = run(reported, "report", "draft")
    assert never.exit_code == 1
    assert never.stderr == (
        "error: issue 'draft' was never sent (an outbox rehearsal does not count) — "
        "`newsletter issues` lists every issue and what became of it\n"
    )
    folder = run(reported, "report", "sample", "--html", str(reported))
    assert folder.exit_code == 1 and "is a folder" in folder.stderr


def test_an_issue_without_events_says_so(tmp_path: Path, sendgrid_stub: SendGridStub) -> None:
    root = sample_workspace(tmp_path / "ws")
    stub_env(root, sendgrid_stub.url)
    add_subscribers(root, READERS[:2])
    assert run(root, "send", "sample", "--yes", "--no-sync").exit_code == 0
    outcome = run(root, "report", "sample", "--json")
    assert outcome.exit_code == 0
    assert json.loads(outcome.stdout)["sent"] == 2
    assert "no SendGrid events for this issue yet" in outcome.stderr


def test_the_preview_links_to_the_results_once_there_are_some(reported: Path) -> None:
    import httpx

    from newsletter.config import load_settings
    from newsletter.preview.server import PreviewServer, Results
    from newsletter.preview.session import PreviewSession
    from newsletter.report.issue_report import has_results, results_page

    settings = load_settings(reported)
    fresh = reported / "issues" / "fresh"
    fresh.mkdir()
    (fresh / "issue.yaml").write_text(
        (reported / "issues" / "sample" / "issue.yaml").read_text(encoding="utf-8")
    )
    for slug, expected in (("sample", True), ("fresh", False)):
        session = PreviewSession(settings, slug)
        session.start()
        results = Results(
            available=lambda slug=slug: has_results(settings, slug),  # type: ignore[misc]
            page=lambda slug=slug: results_page(settings, slug),  # type: ignore[misc]
        )
        server = PreviewServer(session, port=0, results=results)
        server.start()
        try:
            page = httpx.get(server.url).text
            answer = httpx.get(server.url + "results")
        finally:
            server.close()
        assert ('href="/results"' in page) is expected
        assert answer.status_code == (200 if expected else 404)
        if expected:
            assert "data-unique-clicks" in answer.text and "<svg" in answer.text


def test_rates_never_pass_100_percent_when_delivered_events_are_missing(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    """An account that posts only opens and clicks; a test send's events count for nobody."""
    import time

    import httpx

    from newsletter.config import load_settings
    from tests.report.conftest import LEAD, UTM, _event
    from tests.web._server import serve
    from tests.web._signing import SigningKey, body_of

    root = sample_workspace(tmp_path / "ws")
    key = SigningKey()
    stub_env(root, sendgrid_stub.url)
    with (root / ".env").open("a", encoding="utf-8") as env:
        env.write(f"SENDGRID_WEBHOOK_PUBLIC_KEY={key.public_key}\n")
    add_subscribers(root, READERS[:4])
    assert run(root, "send", "sample", "--yes", "--no-sync").exit_code == 0
    now = time.time()
    events = [_event(who, "open", now, sg_machine_open=False) for who in READERS[:3]]
    events.append(_event(READERS[0], "click", now, url=f"{LEAD}?{UTM}"))
    events.append(_event(READERS[0], "delivered", now))
    events.append(
        {**_event("editor@example.org", "click", now, url=f"{LEAD}?{UTM}"), "test": "true"}
    )
    with serve(load_settings(root)) as base:
        body = body_of(events)
        assert httpx.post(
            f"{base}/webhooks/sendgrid", content=body, headers=key.sign(body)
        ).is_success
    data = json.loads(run(root, "report", "sample", "--json").stdout)
    assert data["rates_of"] == "sent"
    assert data["rates"]["opens_unique"] == 75.0  # 3 of the 4 sent, not 300% of 1 delivered
    assert data["clicks_unique"] == 1  # the editor's test-send click counts for no issue
    assert all(rate is None or rate <= 100 for rate in data["rates"].values())
    table = run(root, "report", "sample").stdout
    assert "rates are of sent" in table


def test_the_chart_is_the_same_for_the_same_numbers() -> None:
    from newsletter.report.chart import hourly_svg

    opens, clicks = [3, 1, *[0] * 70], [1, *[0] * 71]
    assert hourly_svg(opens, clicks) == hourly_svg(opens, clicks)


def test_each_reader_who_left_counts_once_under_the_way_they_left(reported: Path) -> None:
    """A group unsubscribe after a one-click one changes nobody and adds no record."""
    import time

    from newsletter.audience.events import read_events, store_events
    from tests._workspace import database
    from tests.report.conftest import _event

    conn = database(reported)
    try:
        events, bad = read_events(
            [
                _event(READERS[1], "group_unsubscribe", time.time(), asm_group_id=42),
                _event(READERS[2], "unsubscribe", time.time()),
            ]
        )
        assert bad == 0
        store_events(conn, events, time.time())
    finally:
        conn.close()
    data = json.loads(run(reported, "report", "sample", "--json").stdout)
    assert data["unsubscribes"] == {"one-click": 1, "sendgrid group": 1, "sendgrid": 1}
    assert data["unsubscribed"] == 3


def test_a_badge_is_never_a_false_zero_for_a_link_that_is_not_a_story() -> None:
    from newsletter.report.page import _badge_for
    from newsletter.report.results import IssueResults, LinkClicks

    results = IssueResults("x", 10, None)
    results.clicks_total = 4
    results.other_links = [LinkClicks("https://sponsor.example.com/", "other", None, None, 2, 4)]

    class NoStories:
        def story(self, url: str) -> None:
            return None

        def kind(self, url: str) -> str:
            return "other"

    sponsor = _badge_for("https://sponsor.example.com/?utm_source=x", results, NoStories())  # type: ignore[arg-type]
    unknown = _badge_for("https://elsewhere.example.com/", results, NoStories())  # type: ignore[arg-type]
    assert sponsor is not None and (sponsor.unique, sponsor.share) == (2, 100.0)
    assert unknown is None
