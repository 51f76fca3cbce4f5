"""`report --from-sendgrid`: a real send to the stand-in, then SendGrid's category statistics
read back through the official client, and every refusal as one line."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.deliver.backends.sendgrid.stats import StatsClient, summed
from newsletter.errors import UserError
from newsletter.report.category_stats import stats_window
from tests._cli import Outcome, run
from tests._workspace import add_subscribers, sample_workspace, stub_env
from tests.report.conftest import READERS
from tests.sendgrid_stub import (
    CATEGORY_STATS,
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

KEY = "SG.test"
TODAY = dt.datetime.now(dt.UTC).date()
YESTERDAY = TODAY - dt.timedelta(days=1)


@pytest.fixture
def sent(tmp_path: Path, sendgrid_stub: SendGridStub) -> Path:
    """The sample sent to six readers through the stand-in; no events posted."""
    root = sample_workspace(tmp_path / "ws")
    stub_env(root, sendgrid_stub.url, api_key=KEY)
    add_subscribers(root, READERS)
    assert run(root, "send", "sample", "--yes", "--no-sync").exit_code == 0
    (request,) = sendgrid_stub.accepted
    assert request.body["categories"] == ["newsletter", "sample"]
    return root


def _sendgrid_saw(stub: SendGridStub) -> None:
    """What SendGrid would have counted for the issue's category over two days."""
    stub.add_category_stats("sample", YESTERDAY.isoformat(), opens=2, clicks=1)
    stub.add_category_stats(
        "sample",
        TODAY.isoformat(),
        delivered=5,
        deferred=1,
        bounces=1,
        spam_reports=1,
        unsubscribes=1,
        opens=7,
        unique_opens=3,
        clicks=4,
        unique_clicks=2,
    )
    stub.add_category_stats("newsletter", TODAY.isoformat(), delivered=1000)  # not this issue


def test_from_sendgrid_json_equals_what_the_stand_in_was_given(
    sent: Path, sendgrid_stub: SendGridStub
) -> None:
    _sendgrid_saw(sendgrid_stub)
    outcome = run(sent, "report", "sample", "--from-sendgrid", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stderr == ""
    data = json.loads(outcome.stdout)
    assert (data["sent"], data["has_events"]) == (6, False)
    stats = data["sendgrid_stats"]
    assert stats["category"] == "sample"
    assert (stats["start_date"], stats["end_date"]) == (YESTERDAY.isoformat(), TODAY.isoformat())
    assert stats["requests"] == 6  # one per recipient of the real send
    assert (stats["delivered"], stats["deferred"], stats["bounces"]) == (5, 1, 1)
    assert (stats["spam_reports"], stats["unsubscribes"]) == (1, 1)
    assert (stats["opens"], stats["unique_opens"]) == (9, 3)  # summed over both days
    assert (stats["clicks"], stats["unique_clicks"]) == (5, 2)
    assert stats["blocks"] == stats["invalid_emails"] == 0
    assert stats["rates_of_delivered"]["unique_opens"] == 60.0
    assert "clicks per link" in stats["cannot_tell"]
    (asked,) = [r for r in sendgrid_stub.requests if r.path == CATEGORY_STATS]
    assert asked.query == {
        "categories": ["sample"],
        "start_date": [YESTERDAY.isoformat()],
        "end_date": [TODAY.isoformat()],
        "aggregated_by": ["day"],
    }


def test_from_sendgrid_table_shows_the_numbers_and_what_is_missing(
    sent: Path, sendgrid_stub: SendGridStub
) -> None:
    _sendgrid_saw(sendgrid_stub)
    outcome = run(sent, "report", "sample", "--from-sendgrid")
    assert outcome.exit_code == 0, outcome.stderr
    lines = outcome.stdout.splitlines()
    assert "sent 6 (the ledger); no events from SendGrid" in lines
    heading = "from SendGrid's category statistics (category sample"
    assert any(line.startswith(heading) for line in lines)
    rows = [line.split() for line in lines]
    assert ["requests", "6"] in rows
    assert ["delivered", "5"] in rows
    assert ["unique", "opens", "3", "60.0%"] in rows
    assert ["clicks", "5"] in rows
    assert "category statistics cannot give clicks per link" in outcome.stdout
    assert "from SendGrid's events" not in outcome.stdout  # none arrived


def test_with_events_too_both_are_shown_labelled(
    reported: Path, sendgrid_stub: SendGridStub
) -> None:
    sendgrid_stub.add_category_stats("sample", TODAY.isoformat(), delivered=6)
    table = run(reported, "report", "sample", "--from-sendgrid")
    assert table.exit_code == 0, table.stderr
    events_at = table.stdout.index("from SendGrid's events (newsletter serve)")
    stats_at = table.stdout.index("from SendGrid's category statistics")
    assert events_at < stats_at
    assert "unsubscribes by way: one-click 1, sendgrid group 1" in table.stdout
    data = json.loads(run(reported, "report", "sample", "--from-sendgrid", "--json").stdout)
    assert (data["delivered"], data["sendgrid_stats"]["delivered"]) == (5, 6)


def _one_line(outcome: Outcome, code: int) -> str:
    assert outcome.exit_code == code, (outcome.stdout, outcome.stderr)
    assert outcome.stdout == ""
    assert len(outcome.stderr.splitlines()) == 1, outcome.stderr
    assert "Traceback" not in outcome.stderr
    assert KEY not in outcome.stderr
    return outcome.stderr


def test_a_refused_key_is_exit_4_and_never_shown(sent: Path, sendgrid_stub: SendGridStub) -> None:
    wrong = "SG.wrong-key-0123456789"
    stub_env(sent, sendgrid_stub.url, api_key=wrong)
    line = _one_line(run(sent, "report", "sample", "--from-sendgrid"), 4)
    assert line.startswith("error: SendGrid refused the API key for read statistics")
    assert wrong not in line


def test_a_key_without_stats_read_is_exit_4_naming_the_permission(
    sent: Path, sendgrid_stub: SendGridStub
) -> None:
    sendgrid_stub.plan("403")
    line = _one_line(run(sent, "report", "sample", "--from-sendgrid"), 4)
    assert "(403: access forbidden)" in line
    assert "give the key the Stats: Read permission" in line


def test_a_rate_limit_says_when_to_retry(sent: Path, sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.rate_limit_reset_offset = 30
    sendgrid_stub.plan("429")
    line = _one_line(run(sent, "report", "sample", "--from-sendgrid", "--json"), 3)
    assert "SendGrid's rate limit for statistics is reached (429: too many requests)" in line
    assert "try again in " in line and " s (at " in line and " UTC)" in line
    seconds = int(line.split("try again in ")[1].split(" s")[0])
    assert 28 <= seconds <= 31


def test_a_category_sendgrid_does_not_know_is_one_line(
    sent: Path, sendgrid_stub: SendGridStub
) -> None:
    del sendgrid_stub.category_stats["sample"]  # as if sent before per-issue categories
    line = _one_line(run(sent, "report", "sample", "--from-sendgrid"), 1)
    assert line.startswith(
        "error: SendGrid has no statistics for category 'sample' (404: category does not "
        "exist (field categories))"
    )
    assert "more than 13 months ago" in line


def test_sendgrid_out_of_reach_is_one_line(sent: Path, sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.stop()
    line = _one_line(run(sent, "report", "sample", "--from-sendgrid"), 3)
    assert "cannot read SendGrid's statistics (connection refused)" in line


def test_summed_adds_days_and_refuses_what_is_not_the_documented_shape() -> None:
    day = {"date": "2026-12-01", "stats": [{"name": "a", "metrics": {"delivered": 2}}]}
    other = {"date": "2026-12-01", "stats": [{"name": "b", "metrics": {"delivered": 9}}]}
    totals = summed("a", [day, day, other])
    assert totals is not None and totals["delivered"] == 4 and totals["opens"] == 0
    assert summed("a", []) is not None
    for wrong in ({"errors": []}, [1], [{"stats": {}}], [{"stats": [{"metrics": 3}]}]):
        assert summed("a", wrong) is None
    bad_number = {"date": "x", "stats": [{"name": "a", "metrics": {"delivered": "2"}}]}
    assert summed("a", [bad_number]) is None


def test_the_window_starts_the_day_before_the_first_send() -> None:
    first = "2026-12-07T00:26:38+00:00"
    assert stats_window(first, dt.date(2026, 12, 9)) == (dt.date(2026, 12, 6), dt.date(2026, 12, 9))
    # a clock behind the ledger never asks for an end before the start
    assert stats_window(first, dt.date(2026, 12, 1)) == (dt.date(2026, 12, 6), dt.date(2026, 12, 6))


class _NotSendGrid(BaseHTTPRequestHandler):
    """A server at SENDGRID_API_HOST that is not SendGrid's API: 200 with a web page."""

    def do_GET(self) -> None:
        body = b"<html>captive portal</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_an_answer_that_is_not_sendgrids_statistics_is_one_line(sent: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotSendGrid)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        stub_env(sent, f"http://127.0.0.1:{server.server_address[1]}", api_key=KEY)
        line = _one_line(run(sent, "report", "sample", "--from-sendgrid"), 3)
    finally:
        server.shutdown()
        server.server_close()
    assert "the answer to GET /v3/categories/stats is not SendGrid's statistics" in line


def test_a_400_naming_the_category_reads_as_an_unknown_category() -> None:
    reader = StatsClient(KEY, "http://127.0.0.1:9")
    body = b'{"errors": [{"message": "category does not exist", "field": "categories"}]}'
    refused = reader._refused("sample", 400, body, {})
    assert isinstance(refused, UserError)
    assert "no statistics for category 'sample'" in str(refused)
    other = reader._refused("sample", 400, b'{"errors": [{"message": "bad start_date"}]}', {})
    assert not isinstance(other, UserError) and "answered 400" in str(other)
