"""`newsletter subscribers ...` and `newsletter status` as a user sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from newsletter.audience.store import SubscriberStore
from newsletter.deliver.ledger import Ledger
from tests._cli import run
from tests._workspace import database, make_workspace, write_csv

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)


MEMBERS = """\
Email,Name,First name,City
ann@Example.org,Ann Smith,Ann,Tirana
bad@,Bad,,Nowhere
ANN@example.org,Ann Again,,Tirana
bob@example.org,"Smith, Bob",Bob,Durres
carl@example.org,Carl,,Vlore
"""


def lines(text: str) -> list[str]:
    return text.splitlines()


def test_import_reports_rejected_rows_and_imports_the_rest(ws: Path) -> None:
    csv = write_csv(ws / "members.csv", MEMBERS, bom=True)
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 1
    assert lines(outcome.stdout) == [
        f"imported 3 new subscribers from {csv} (5 rows: 2 rejected)",
    ]
    assert lines(outcome.stderr) == [
        f"{csv}:3: invalid address 'bad@': There must be something after the @-sign.",
        f"{csv}:4: duplicate of line 2 (ANN@example.org)",
        "error: 2 rows were rejected (listed above); the other rows were imported — correct "
        "those rows and import the file again (rows already on the list are skipped)",
    ]
    again = run(ws, "subscribers", "import", str(csv))
    assert again.exit_code == 1
    assert lines(again.stdout) == [
        f"imported 0 new subscribers from {csv} (5 rows: 2 rejected, 3 already on the list)",
    ]
    assert lines(again.stderr)[-1] == (
        "error: 2 rows were rejected (listed above); no other row was new — correct "
        "those rows and import the file again (rows already on the list are skipped)"
    )
    assert run(ws, "subscribers", "stats", "--json").stdout == (
        '{\n  "total": 3,\n  "active": 3,\n  "unsubscribed": 0,\n'
        '  "bounced": 0,\n  "complained": 0,\n  "pending": 0\n}\n'
    )


def test_import_again_skips_whom_it_knows_and_never_reactivates(ws: Path) -> None:
    csv = write_csv(ws / "members.csv", "email,name\nann@example.org,Ann\nbob@example.org,Bob\n")
    assert run(ws, "subscribers", "import", str(csv)).exit_code == 0
    assert run(ws, "subscribers", "unsubscribe", "bob@example.org").exit_code == 0
    write_csv(csv, "email\nann@example.org\nbob@example.org\ncarl@example.org\n")
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 0
    assert lines(outcome.stdout) == [
        f"imported 1 new subscriber from {csv} (3 rows: 1 already on the list, 1 kept unsubscribed)"
    ]
    assert lines(outcome.stderr) == [
        f"{csv}:2: already on the list (ann@example.org)",
        f"{csv}:3: kept unsubscribed (bob@example.org): an import never re-activates",
    ]


def test_import_of_a_file_in_another_encoding(ws: Path) -> None:
    csv = ws / "latin1.csv"
    csv.write_bytes("email,name\nann@example.org,Ann\nbob@example.org,Jos\xe9\n".encode("latin-1"))
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    assert lines(outcome.stderr) == [
        f"error: {csv}:3: not UTF-8 text (byte 0xe9 at column 20); nothing was imported — "
        "save the file as UTF-8 (in Excel: Save As > CSV UTF-8) and import it again"
    ]
    assert run(ws, "subscribers", "stats").stdout.startswith("0 subscribers\n")


def test_import_of_a_missing_file(ws: Path) -> None:
    outcome = run(ws, "subscribers", "import", "nowhere.csv")
    assert outcome.exit_code == 1
    assert lines(outcome.stderr) == [
        "error: nowhere.csv: cannot read the file (No such file or directory)"
    ]


def test_add_remove_unsubscribe(ws: Path) -> None:
    assert lines(run(ws, "subscribers", "add", "Ann@Example.ORG", "--name", "Ann").stdout) == [
        "added Ann <Ann@example.org>"
    ]
    again = run(ws, "subscribers", "add", "ann@example.org")
    assert again.exit_code == 1
    assert lines(again.stderr) == [
        "error: Ann@example.org is already on the list (active) — nothing to do"
    ]
    bad = run(ws, "subscribers", "add", "ann@")
    assert lines(bad.stderr) == [
        "error: invalid address 'ann@': There must be something after the @-sign. — "
        "check the spelling of the address"
    ]
    assert lines(run(ws, "subscribers", "unsubscribe", "ann@example.org").stdout) == [
        "unsubscribed Ann@example.org"
    ]
    assert lines(run(ws, "subscribers", "unsubscribe", "ann@example.org").stdout) == [
        "Ann@example.org is already unsubscribed"
    ]
    assert lines(run(ws, "subscribers", "remove", "ann@example.org").stdout) == [
        "removed Ann@example.org"
    ]
    gone = run(ws, "subscribers", "remove", "ann@example.org")
    assert gone.exit_code == 1
    assert lines(gone.stderr) == [
        "error: ann@example.org is not on the list — "
        "check the spelling, or see `newsletter subscribers list`"
    ]


def test_list_and_stats(ws: Path) -> None:
    run(ws, "subscribers", "import", str(write_csv(ws / "m.csv", MEMBERS)))
    run(ws, "subscribers", "unsubscribe", "bob@example.org")
    listed = lines(run(ws, "subscribers", "list").stdout)
    assert [line[: -len(" 2026-12-01)")] if "(" in line else line for line in listed] == [
        "active       ann@example.org  Ann Smith",
        "unsubscribed bob@example.org  Smith, Bob  (by the editors,",
        "active       carl@example.org  Carl",
    ]
    assert lines(run(ws, "subscribers", "list", "--status", "active", "--limit", "1").stdout) == [
        "active       ann@example.org  Ann Smith"
    ]
    wrong = run(ws, "subscribers", "list", "--status", "gone")
    assert (wrong.exit_code, lines(wrong.stderr)) == (
        1,
        [
            "error: --status: unknown status 'gone' — use active, unsubscribed, bounced, "
            "complained, pending"
        ],
    )
    assert lines(run(ws, "subscribers", "stats").stdout) == [
        "3 subscribers",
        "  active       2",
        "  unsubscribed 1",
        "  bounced      0",
        "  complained   0",
        "  pending      0",
    ]


def test_export_to_a_file_and_to_stdout(ws: Path) -> None:
    run(ws, "subscribers", "import", str(write_csv(ws / "m.csv", MEMBERS)))
    outcome = run(ws, "subscribers", "export", str(ws / "out.csv"))
    assert lines(outcome.stdout) == [f"exported 3 subscribers to {ws / 'out.csv'}"]
    expected = (
        "email,name,first_name,status,status_reason,status_changed,City\n"
        "ann@example.org,Ann Smith,Ann,active,,,Tirana\n"
        'bob@example.org,"Smith, Bob",Bob,active,,,Durres\n'
        "carl@example.org,Carl,,active,,,Vlore\n"
    )
    assert (ws / "out.csv").read_text(encoding="utf-8") == expected
    assert run(ws, "subscribers", "export", "-").stdout == expected
    assert run(ws, "subscribers", "export").stdout == expected


def test_export_into_a_missing_folder_is_refused_and_creates_nothing(ws: Path) -> None:
    run(ws, "subscribers", "import", str(write_csv(ws / "m.csv", MEMBERS)))
    target = ws / "missing" / "dir" / "out.csv"
    outcome = run(ws, "subscribers", "export", str(target))
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {ws / 'missing' / 'dir'}: the folder to export into does not exist — create "
        "it first, or give a path in an existing folder\n"
    )
    assert not (ws / "missing").exists()


def _ledger_with_every_state(ws: Path) -> None:
    conn = database(ws)
    store = SubscriberStore(conn)
    for i in range(6):
        store.add(f"reader{i}@example.org")
    ledger = Ledger(conn)
    ledger.prepare("2026-12-01")
    store.unsubscribe("reader5@example.org", "asked")
    outcomes = ["sent", "sent", "failed", "unknown"]
    for outcome in outcomes:
        batch = ledger.claim_batch("2026-12-01", 1)
        assert batch is not None
        if outcome == "sent":
            ledger.mark_sent(batch.id, "msg")
        elif outcome == "failed":
            ledger.mark_failed(batch.id, "400 Bad Request: The to.email is invalid")
        else:
            ledger.mark_unknown(batch.id, "the connection dropped after the request was sent")
    conn.close()


def test_status_lists_every_state_and_the_recipients_to_look_at(ws: Path) -> None:
    _ledger_with_every_state(ws)
    outcome = run(ws, "status", "2026-12-01")
    assert outcome.exit_code == 0
    assert lines(outcome.stdout) == [
        "2026-12-01: 2 of 6 recipients sent — not complete",
        "  pending  2",
        "  sending  0",
        "  sent     2",
        "  failed   1",
        "  unknown  1",
        "  skipped  0",
        "unknown (the request may have gone out; resent only with "
        "`newsletter send 2026-12-01 --resend-unknown`):",
        "  reader3@example.org: the connection dropped after the request was sent",
        "failed (refused by the delivery service; a rerun of send retries them):",
        "  reader2@example.org: 400 Bad Request: The to.email is invalid",
    ]


def test_status_json_for_scripts(ws: Path) -> None:
    _ledger_with_every_state(ws)
    outcome = run(ws, "status", "2026-12-01", "--json")
    assert json.loads(outcome.stdout) == {
        "issue": "2026-12-01",
        "complete": False,
        "recipients": 6,
        "counts": {
            "pending": 2,
            "sending": 0,
            "sent": 2,
            "failed": 1,
            "unknown": 1,
            "skipped": 0,
        },
        "sent_by": {"unrecorded": 2},  # batches claimed without naming their backend
        "unknown": [
            {
                "email": "reader3@example.org",
                "error": "the connection dropped after the request was sent",
            }
        ],
        "failed": [
            {"email": "reader2@example.org", "error": "400 Bad Request: The to.email is invalid"}
        ],
    }


def test_status_limits_long_lists(ws: Path) -> None:
    conn = database(ws)
    store = SubscriberStore(conn)
    for i in range(5):
        store.add(f"reader{i}@example.org")
    ledger = Ledger(conn)
    ledger.prepare("big")
    batch = ledger.claim_batch("big", 10)
    assert batch is not None
    ledger.mark_failed(batch.id, "413 Payload Too Large")
    conn.close()
    outcome = run(ws, "status", "big", "--limit", "2")
    assert lines(outcome.stdout)[-4:] == [
        "failed (refused by the delivery service; a rerun of send retries them):",
        "  reader0@example.org: 413 Payload Too Large",
        "  reader1@example.org: 413 Payload Too Large",
        "  … and 3 more (--limit 0 lists them all)",
    ]
    assert len(json.loads(run(ws, "status", "big", "--json", "--limit", "0").stdout)["failed"]) == 5


def test_status_of_an_issue_that_does_not_exist_does_not_suggest_sending_it(ws: Path) -> None:
    outcome = run(ws, "status", "nope")
    assert outcome.exit_code == 1
    assert lines(outcome.stderr) == [
        f"error: {ws / 'issues' / 'nope'}: no issue 'nope' — check the name against the "
        "folders in issues/"
    ]


def test_status_of_an_issue_never_sent(ws: Path) -> None:
    assert run(ws, "new", "2026-12-01").exit_code == 0
    outcome = run(ws, "status", "2026-12-01")
    assert outcome.exit_code == 1
    assert lines(outcome.stderr) == [
        "error: nothing has been sent for issue '2026-12-01' (it has no ledger) — "
        "send it with `newsletter send 2026-12-01`"
    ]


def test_a_complete_issue(ws: Path) -> None:
    conn = database(ws)
    SubscriberStore(conn).add("ann@example.org")
    ledger = Ledger(conn)
    ledger.prepare("done")
    batch = ledger.claim_batch("done", 10)
    assert batch is not None
    ledger.mark_sent(batch.id, "msg")
    conn.close()
    assert lines(run(ws, "status", "done").stdout)[0] == "done: 1 of 1 recipients sent — complete"


@pytest.mark.parametrize("sep_line", ["sep=;", '"sep=;"'])  # Excel quotes it on a resave
def test_an_excel_csv_with_its_sep_line_imports(ws: Path, sep_line: str) -> None:
    text = f"{sep_line}\r\nE-Mail;Name\r\nann@example.org;Ann Smith\r\nbob@example.org;Bob\r\n"
    outcome = run(ws, "subscribers", "import", str(write_csv(ws / "excel.csv", text, bom=True)))
    assert outcome.exit_code == 0, outcome.stderr
    assert lines(outcome.stdout)[-1].startswith("imported 2 new subscribers")
    listed = run(ws, "subscribers", "export").stdout
    assert "ann@example.org,Ann Smith" in listed and "bob@example.org,Bob" in listed
