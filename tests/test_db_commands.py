"""`newsletter db migrate | status | copy`: the schema brought up to date, and a workspace
moved between SQLite and PostgreSQL with every row and id kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from newsletter.db import open_database, transaction
from newsletter.db.copy import TABLES
from newsletter.db.target import PostgresTarget, parse_target
from newsletter.migrations import MIGRATIONS
from tests._cli import run
from tests._postgres import Server
from tests._workspace import add_subscribers, database, make_workspace, write_csv

NAMES = [name for name, _ in MIGRATIONS]


def test_migrate_applies_then_is_up_to_date(tmp_path: Path, engine: str) -> None:
    root = make_workspace(tmp_path)

    first = run(root, "db", "migrate")
    again = run(root, "db", "migrate")

    assert first.exit_code == 0, first.stderr
    assert f"applied {len(NAMES)} migrations" in first.stdout
    assert all(f"  {name}" in first.stdout for name in NAMES)
    assert again.exit_code == 0
    assert again.stdout.endswith(f"up to date ({len(NAMES)} migrations applied)\n")
    if engine == "postgresql":
        assert "postgresql://postgres@127.0.0.1:" in first.stdout


def test_a_failing_migration_leaves_the_earlier_ones_and_nothing_of_itself(
    tmp_path: Path, engine: str
) -> None:
    root = make_workspace(tmp_path)
    conn = database_without_schema(root)
    try:  # a table in the way of 003_schedules
        conn.execute("CREATE TABLE schedules (issue TEXT)")
    finally:
        conn.close()

    failed = run(root, "db", "migrate")

    assert failed.exit_code == 1
    assert "applied 2 migrations\n  001_subscribers\n  002_ledger\n" in failed.stdout
    (line,) = failed.stderr.splitlines()
    assert line.startswith("error: ") and "schedules" in line
    conn = database_without_schema(root)
    try:
        applied = [name for (name,) in conn.execute("SELECT name FROM _migrations").fetchall()]
        sendgrid = conn.execute("SELECT count(*) FROM sendgrid_batches").fetchone()
    except Exception as missing:  # 004's table: not there, as 003 stopped the run
        sendgrid = missing
    finally:
        conn.close()
    assert applied == ["001_subscribers", "002_ledger"]
    assert isinstance(sendgrid, Exception)


def database_without_schema(root: Path) -> Any:
    from newsletter.config import load_settings

    return open_database(load_settings(root).database, migrate_now=False)


def test_status_names_the_engine_without_a_password_and_counts_rows(
    tmp_path: Path, engine: str
) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, ["ann@example.org", "bob@example.org"])

    shown = run(root, "db", "status")

    assert shown.exit_code == 0, shown.stderr
    assert ("(PostgreSQL)" if engine == "postgresql" else "(SQLite)") in shown.stdout
    assert "schema     up to date (10 migrations" in shown.stdout
    assert "  subscribers       2\n" in shown.stdout
    assert "pg-test-" not in shown.stdout  # the test cluster's password


def test_status_of_a_workspace_without_a_database_creates_none(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)

    shown = run(root, "db", "status")

    assert shown.exit_code == 0
    assert "none yet" in shown.stdout
    assert not (root / "newsletter.db").exists()


def every_table_filled(root: Path) -> None:
    """At least one row in every table, ids with gaps, and a deleted highest subscriber."""
    csv = write_csv(
        root / "list.csv", "email,name,city\nann@example.org,Ann,Graz\nbob@example.org,Bob,Linz\n"
    )
    assert run(root, "subscribers", "import", str(csv)).exit_code == 0
    add_subscribers(root, ["gone@example.org"])
    conn = database(root)
    try:
        with transaction(conn):
            conn.execute("DELETE FROM subscribers WHERE email = 'gone@example.org'")
            conn.execute("INSERT INTO ledger_issues (id, slug, prepared) VALUES (7, 'spring', 'x')")
            conn.execute(
                "INSERT INTO batches (id, issue_id, state, attempt, size, created, backend) "
                "VALUES (40, 7, 'sent', 1, 2, 'x', 'outbox')"
            )
            conn.executemany(
                "INSERT INTO ledger (id, issue_id, subscriber_id, email_key, state, batch_id) "
                "VALUES (?, 7, ?, ?, 'batched', 40)",
                [(100, 1, "ann@example.org"), (205, 2, "bob@example.org")],
            )
            conn.execute("INSERT INTO schedules VALUES ('summer', '2027-01-01T08:00', 'UTC', 'x')")
            conn.execute(
                "INSERT INTO sendgrid_batches (issue, send_at, state, updated) "
                "VALUES ('summer', 1798790400, 'planned', 'x')"
            )
            conn.execute("INSERT INTO schedule_reports VALUES ('summer', 'x')")
            conn.execute("INSERT INTO schedule_failures VALUES ('autumn', 'boom', 'x', 'y')")
            conn.execute(
                "INSERT INTO consent (email_key, action, method, created) "
                "VALUES ('ann@example.org', 'signup', 'form', 'x')"
            )
            conn.execute(
                "INSERT INTO events (id, digest, event, email_key, issue, occurred, url, "
                "machine_open, received) VALUES (9, 'd1', 'click', 'ann@example.org', "
                "'spring', 1798790400, 'https://example.org/a?x=1&y=%20', 0, 'x')"
            )
    finally:
        conn.close()


def by_name(conn: Any, table: str) -> list[dict[str, Any]]:
    """Rows as column -> value (the engines order a rebuilt table's columns alike, but
    this does not rely on it)."""
    if isinstance(conn, sqlite3.Connection):
        cursor = conn.execute(f"SELECT * FROM {table}")
        names = [d[0] for d in cursor.description]
        return sorted(
            (dict(zip(names, row, strict=True)) for row in cursor), key=lambda r: sorted(r.items())
        )
    cursor = conn.raw.execute(f"SELECT * FROM {table}")
    names = [d.name for d in cursor.description]
    return sorted(
        (dict(zip(names, row, strict=True)) for row in cursor), key=lambda r: sorted(r.items())
    )


def test_the_tables_copied_are_every_table_of_the_migrations(tmp_path: Path) -> None:
    conn = open_database(tmp_path / "all.db")
    try:
        names = {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
    finally:
        conn.close()
    assert names - {"_migrations", "sqlite_sequence"} == set(TABLES)


def test_copy_moves_every_row_and_id_to_postgresql_and_back(
    tmp_path: Path, postgres_server: Server
) -> None:
    root = make_workspace(tmp_path)
    every_table_filled(root)
    with postgres_server.fresh_database() as url:
        copied = run(root, "db", "copy", "--to", url)

        assert copied.exit_code == 0, copied.stderr
        assert "copied " in copied.stdout and postgres_server.password not in copied.stdout
        assert "  subscribers       2\n" in copied.stdout
        assert "  events            1\n" in copied.stdout
        target = parse_target(url, workspace=root, where="test")
        assert isinstance(target, PostgresTarget)
        lite, pg = database(root), open_database(target)
        try:
            for table in TABLES:
                assert by_name(pg, table) == by_name(lite, table), table
            # The deleted subscriber's id (3) is not given again; ids go on after the copied.
            with transaction(pg):
                (new_id,) = pg.execute(
                    "INSERT INTO subscribers (email, email_key, created, updated) "
                    "VALUES ('new@example.org', 'new@example.org', 'x', 'x') RETURNING id"
                ).fetchone()
                (ledger_id,) = pg.execute(
                    "INSERT INTO ledger (issue_id, subscriber_id, email_key, state) "
                    "VALUES (7, 4, 'new@example.org', 'pending') RETURNING id"
                ).fetchone()
            assert (new_id, ledger_id) == (4, 206)
        finally:
            lite.close()
            pg.close()

        back = run(root, "db", "copy", "--from", url, "--to", "sqlite:///back.db")

        assert back.exit_code == 0, back.stderr
        assert "  subscribers       3\n" in back.stdout
        returned = open_database(root / "back.db")
        try:
            (seq,) = returned.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'subscribers'"
            ).fetchone()
            assert by_name(returned, "events") == by_name(open_database(target), "events")
        finally:
            returned.close()
        assert seq == 4


def test_copy_refuses_a_target_that_holds_data_and_leaves_it_alone(
    tmp_path: Path, postgres_url: str
) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, ["ann@example.org"])
    assert run(root, "db", "copy", "--to", postgres_url).exit_code == 0
    add_subscribers(root, ["bob@example.org"])

    again = run(root, "db", "copy", "--to", postgres_url)

    assert again.exit_code == 1
    (line,) = again.stderr.splitlines()
    assert "already holds data (in subscribers)" in line and "new, empty database" in line
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT count(*) FROM subscribers").fetchone() == (1,)


def test_a_copy_that_fails_leaves_the_target_as_it_was(tmp_path: Path, postgres_url: str) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, [f"r{i}@example.org" for i in range(50)])
    conn = database(root)
    try:  # SQLite keeps text in an INTEGER column; PostgreSQL refuses it, at the last table
        with transaction(conn):
            conn.execute(
                "INSERT INTO events (digest, event, occurred, received) "
                "VALUES ('d', 'open', 'soon', 'x')"
            )
    finally:
        conn.close()

    failed = run(root, "db", "copy", "--to", postgres_url)

    assert failed.exit_code == 1
    (line,) = failed.stderr.splitlines()
    assert line.startswith("error: ") and "pg-test-" not in line
    with psycopg.connect(postgres_url) as pg:
        (tables,) = pg.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()
    assert tables == 0  # not even the schema: the migration was part of the copy


def test_a_copy_into_a_new_sqlite_file_that_fails_leaves_no_file(
    tmp_path: Path, postgres_url: str
) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, ["ann@example.org"])
    assert run(root, "db", "copy", "--to", postgres_url).exit_code == 0
    with psycopg.connect(postgres_url, autocommit=True) as pg:  # a row SQLite's CHECK refuses
        pg.execute("ALTER TABLE consent DROP CONSTRAINT consent_action_check")
        pg.execute(
            "INSERT INTO consent (email_key, action, method, created) "
            "VALUES ('a', 'forged', 'm', 'x')"
        )

    failed = run(root, "db", "copy", "--from", postgres_url, "--to", "sqlite:///copy.db")

    assert failed.exit_code == 1, failed.stdout
    assert len(failed.stderr.splitlines()) == 1
    assert not list(root.glob("copy.db*"))


def test_copy_without_a_target_says_how_to_give_one(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, ["ann@example.org"])

    outcome = run(root, "db", "copy")

    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: --to: there is no database to copy into — give --to")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("mysql://u:pw@host/db", "--to has the scheme 'mysql'"),
        ("ftp://u:pw@host/db", "--to has the scheme 'ftp'"),
    ],
)
def test_copy_names_the_option_whose_url_is_wrong(tmp_path: Path, url: str, said: str) -> None:
    root = make_workspace(tmp_path)

    outcome = run(root, "db", "copy", "--to", url)

    assert outcome.exit_code == 1
    assert said in outcome.stderr and "pw" not in outcome.stderr


def test_a_refused_password_in_to_is_said_of_to(tmp_path: Path, postgres_server: Server) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, ["ann@example.org"])
    with postgres_server.fresh_database() as url:
        wrong = url.replace(postgres_server.password, "Wrong-Secret-42")
        outcome = run(root, "db", "copy", "--to", wrong)
    assert outcome.exit_code == 1
    assert "correct the password in --to" in outcome.stderr
    assert "Wrong-Secret-42" not in outcome.stderr + outcome.stdout


def test_copy_takes_a_plain_path_for_a_sqlite_file(tmp_path: Path) -> None:
    root = make_workspace(tmp_path)
    add_subscribers(root, ["ann@example.org", "bob@example.org"])

    outcome = run(root, "db", "copy", "--to", "backup.db")
    missing = run(root, "db", "copy", "--from", "nope.db", "--to", "other.db")

    assert outcome.exit_code == 0, outcome.stderr
    assert (root / "backup.db").is_file()
    assert missing.exit_code == 1
    assert "there is no SQLite database to copy" in missing.stderr


def test_copy_from_a_missing_file_creates_nothing(tmp_path: Path, postgres_url: str) -> None:
    root = make_workspace(tmp_path)

    outcome = run(root, "db", "copy", "--to", postgres_url)

    assert outcome.exit_code == 1
    assert "there is no SQLite database to copy" in outcome.stderr
    assert not (root / "newsletter.db").exists()


def test_postgres_reads_percent_signs_as_written(postgres_url: str) -> None:
    """The SQL is written once for both engines: a literal % means % on PostgreSQL too,
    with parameters bound or without."""
    conn = open_database(parse_target(postgres_url, workspace=Path("."), where="test"))
    try:
        assert conn.execute("SELECT '100%'").fetchone() == ("100%",)
        assert conn.execute("SELECT '100%' || ?", ("!",)).fetchone() == ("100%!",)
    finally:
        conn.close()
