"""Other tools' exports, statuses that never re-activate, names in other languages, and
the reason and date of an opt-out in `list` and `export` — through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests._cli import run
from tests._workspace import make_workspace, write_csv

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)


def statuses(ws: Path) -> dict[str, str]:
    out = run(ws, "subscribers", "export").stdout.splitlines()
    return {line.split(",")[0]: line.split(",")[3] for line in out[1:]}


def test_ghost_export_keeps_its_unsubscribed_members_out(ws: Path) -> None:
    csv = write_csv(
        ws / "ghost.csv",
        "id,email,name,note,subscribed_to_emails,complimentary_plan,stripe_customer_id,"
        "created_at,deleted_at,labels,tiers\n"
        "1,ann@example.org,Ann,,true,false,,2024-01-01T00:00:00.000Z,,,Free\n"
        "2,bob@example.org,Bob,,false,false,,2024-01-01T00:00:00.000Z,,,Free\n",
    )
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 0, outcome.stderr
    assert statuses(ws) == {"ann@example.org": "active", "bob@example.org": "unsubscribed"}


def test_buttondown_export_maps_subscriber_types(ws: Path) -> None:
    csv = write_csv(
        ws / "bd.csv",
        "email,subscriber_type,creation_date,notes,tags,metadata\n"
        "ann@example.org,regular,2024-01-01,,,\n"
        "bob@example.org,unsubscribed,2024-01-01,,,\n"
        "carl@example.org,removed,2024-01-01,,,\n"
        "dana@example.org,premium,2024-01-01,,,\n"
        "erin@example.org,undeliverable,2024-01-01,,,\n",
    )
    assert run(ws, "subscribers", "import", str(csv)).exit_code == 0
    assert statuses(ws) == {
        "ann@example.org": "active",
        "bob@example.org": "unsubscribed",
        "carl@example.org": "unsubscribed",
        "dana@example.org": "active",
        "erin@example.org": "bounced",
    }


def test_listmonk_export_maps_blocklisted_and_unsubscribed(ws: Path) -> None:
    csv = write_csv(
        ws / "lm.csv",
        "uuid,email,name,attributes,status,subscription_status,created_at,updated_at\n"
        'u1,ann@example.org,Ann,"{}",enabled,confirmed,2024-01-01,2024-01-01\n'
        'u2,bob@example.org,Bob,"{}",blocklisted,confirmed,2024-01-01,2024-01-01\n'
        'u3,carl@example.org,Carl,"{}",enabled,unsubscribed,2024-01-01,2024-01-01\n',
    )
    assert run(ws, "subscribers", "import", str(csv)).exit_code == 0
    assert statuses(ws) == {
        "ann@example.org": "active",
        "bob@example.org": "unsubscribed",
        "carl@example.org": "unsubscribed",
    }


def test_mailchimp_status_values_and_its_cleaned_and_unsubscribed_exports(ws: Path) -> None:
    subscribed = write_csv(
        ws / "mc.csv",
        "Email Address,First Name,Last Name,Status\nann@example.org,Ann,Smith,subscribed\n",
    )
    outcome = run(ws, "subscribers", "import", str(subscribed))
    assert outcome.exit_code == 0, outcome.stderr
    cleaned = write_csv(
        ws / "cleaned.csv",
        "Email Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CLEAN_TIME,"
        "CLEAN_CAMPAIGN_TITLE\nbob@example.org,Bob,,1,2024-01-01,2024-02-01,Spring\n",
    )
    unsubscribed = write_csv(
        ws / "unsub.csv",
        "Email Address,First Name,Last Name,MEMBER_RATING,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,"
        "UNSUB_REASON\nann@example.org,Ann,Smith,2,2024-03-01,Spring,No longer interested\n"
        "carl@example.org,Carl,,2,2024-03-01,Spring,\n",
    )
    assert run(ws, "subscribers", "import", str(cleaned)).exit_code == 0
    assert run(ws, "subscribers", "import", str(unsubscribed)).exit_code == 0
    assert statuses(ws) == {
        "ann@example.org": "unsubscribed",
        "bob@example.org": "bounced",
        "carl@example.org": "unsubscribed",
    }
    assert run(ws, "subscribers", "list").stdout.splitlines() == [
        "unsubscribed ann@example.org  Ann Smith  (No longer interested, 2024-03-01)",
        "bounced      bob@example.org  Bob  (bounced in cleaned.csv, 2024-02-01)",
        "unsubscribed carl@example.org  Carl  (unsubscribed in unsub.csv, 2024-03-01)",
    ]


def test_substack_email_disabled(ws: Path) -> None:
    csv = write_csv(
        ws / "substack.csv",
        "email,active_subscription,expiry,plan,email_disabled,created_at,first_payment_at\n"
        "ann@example.org,false,,other,false,2024-01-01,\n"
        "bob@example.org,false,,other,true,2024-01-01,\n",
    )
    assert run(ws, "subscribers", "import", str(csv)).exit_code == 0
    assert statuses(ws) == {"ann@example.org": "active", "bob@example.org": "unsubscribed"}


def test_status_option_applies_to_every_row_and_never_reactivates(ws: Path) -> None:
    run(ws, "subscribers", "add", "ann@example.org")
    csv = write_csv(ws / "optouts.csv", "email\nann@example.org\nbob@example.org\n")
    outcome = run(ws, "subscribers", "import", str(csv), "--status", "unsubscribed")
    assert outcome.exit_code == 0, outcome.stderr
    assert statuses(ws) == {"ann@example.org": "unsubscribed", "bob@example.org": "unsubscribed"}
    # Whatever a later file or option says, they stay opted out.
    active = write_csv(ws / "back.csv", "email,status\nann@example.org,active\n")
    assert run(ws, "subscribers", "import", str(active), "--status", "active").exit_code == 0
    assert statuses(ws)["ann@example.org"] == "unsubscribed"
    wrong = run(ws, "subscribers", "import", str(csv), "--status", "gone")
    assert wrong.exit_code == 1
    assert "--status: unknown status 'gone'" in wrong.stderr


def test_a_file_that_says_active_then_unsubscribed_for_one_address_keeps_the_opt_out(
    ws: Path,
) -> None:
    csv = write_csv(
        ws / "twice.csv", "email,status\nann@example.org,active\nann@example.org,unsubscribed\n"
    )
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 1
    assert f"{csv}:3: duplicate of line 2 (ann@example.org); marked unsubscribed" in outcome.stderr
    assert statuses(ws) == {"ann@example.org": "unsubscribed"}


def test_an_unknown_status_value_is_one_located_error(ws: Path) -> None:
    csv = write_csv(
        ws / "bd.csv",
        "email,name,subscriber_type\nann@example.org,Ann,regular\nb@example.org,B,x\n",
    )
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 1
    located = [line for line in outcome.stderr.splitlines() if line.startswith(str(csv))]
    assert located == [
        f"{csv}:3:3: subscriber_type 'x' is not one of regular, premium, gifted, trialed, "
        "churning, churned, past_due, unpaid, unsubscribed, removed, unactivated, paused, "
        "blocked, spammy, complained, undeliverable, bounced, malformed"
    ]


@pytest.mark.parametrize(
    ("header", "row"),
    [
        ("E-Mail;Vorname;Nachname", "ann@example.org;Ann;Smith"),
        ("E-Mail-Adresse,Vorname,Nachname", "ann@example.org,Ann,Smith"),
        ("Email address,Given name,Surname", "ann@example.org,Ann,Smith"),
        ("Email,Given name,Family name", "ann@example.org,Ann,Smith"),
        ("e-mail,prénom,nom", "ann@example.org,Ann,Smith"),
        ("Email,First,Last", "ann@example.org,Ann,Smith"),
        ("Email Address,FNAME,LNAME", "ann@example.org,Ann,Smith"),
        ("E-Mail,Vorname,Familienname", "ann@example.org,Ann,Smith"),
    ],
)
def test_names_in_other_spellings_make_first_and_full_name(ws: Path, header: str, row: str) -> None:
    csv = write_csv(ws / "names.csv", f"{header}\n{row}\n")
    outcome = run(ws, "subscribers", "import", str(csv))
    assert outcome.exit_code == 0, outcome.stderr
    exported = run(ws, "subscribers", "export").stdout.splitlines()
    assert exported[1].startswith("ann@example.org,Ann Smith,Ann,active,")


def test_list_and_export_show_the_reason_and_date_and_reimport_keeps_them(ws: Path) -> None:
    run(ws, "subscribers", "add", "ann@example.org", "--name", "Ann")
    run(ws, "subscribers", "add", "bob@example.org")
    run(ws, "subscribers", "unsubscribe", "ann@example.org", "--reason", "asked by email")
    listed = run(ws, "subscribers", "list").stdout.splitlines()
    assert listed[0].startswith("unsubscribed ann@example.org  Ann  (asked by email, 20")
    assert listed[1] == "active       bob@example.org"
    target = ws / "out.csv"
    assert run(ws, "subscribers", "export", str(target)).exit_code == 0
    header, ann, bob = target.read_text(encoding="utf-8").splitlines()
    assert header == "email,name,first_name,status,status_reason,status_changed"
    assert ann.startswith("ann@example.org,Ann,,unsubscribed,asked by email,20")
    changed = ann.split(",")[5]
    assert bob == "bob@example.org,,,active,,"
    other = make_workspace(ws.parent / "other")
    assert run(other, "subscribers", "import", str(target)).exit_code == 0
    assert run(other, "subscribers", "export").stdout.splitlines()[1] == (
        f"ann@example.org,Ann,,unsubscribed,asked by email,{changed}"
    )
