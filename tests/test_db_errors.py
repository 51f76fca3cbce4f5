"""A PostgreSQL URL or server that cannot be used is one line with its fix, through the
commands a user runs, and the password is never shown, in any form."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from newsletter.db.postgres import MIN_SERVER_VERSION, check_server_version
from newsletter.db.target import PostgresTarget
from newsletter.errors import UserError
from tests._postgres import Server
from tests._workspace import sample_workspace, write_csv

PASSWORD = "Zebra@Quokka:7731/x"  # @ : / must be percent-encoded in a URL
ENCODED = quote(PASSWORD, safe="")
FORMS = (PASSWORD, ENCODED, "Zebra", "Quokka")


@dataclass(frozen=True)
class Roles:
    server: Server
    owner: str  # may do anything in `database`
    reader: str  # may connect and read, not write
    database: str  # migrated, owned by `owner`
    empty: str  # not migrated, owned by the superuser: `owner` may connect, not create

    def url(self, user: str, database: str | None = None, password: str = ENCODED) -> str:
        s = self.server
        return f"postgresql://{user}:{password}@{s.host}:{s.port}/{database or self.database}"


@pytest.fixture(scope="module")
def roles(postgres_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Roles]:
    tag = uuid.uuid4().hex[:8]
    found = Roles(postgres_server, f"owner_{tag}", f"reader_{tag}", f"db_{tag}", f"empty_{tag}")
    secret = PASSWORD.replace("'", "''")
    with postgres_server.admin() as admin:
        for role in (found.owner, found.reader):
            admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        admin.execute(f"CREATE DATABASE {found.database} OWNER {found.owner}")
        admin.execute(f"CREATE DATABASE {found.empty}")
        admin.execute(f"GRANT CONNECT ON DATABASE {found.database} TO {found.reader}")
    workspace = sample_workspace(tmp_path_factory.mktemp("roles") / "ws")
    migrated = newsletter(workspace, found.url(found.owner), "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    with psycopg.connect(postgres_server.url(found.database), autocommit=True) as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {found.reader}")
    yield found
    with postgres_server.admin() as admin:
        for name in (found.database, found.empty):
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        for role in (found.owner, found.reader):
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def newsletter(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, in its own process: everything it prints, psycopg's and libpq's too."""
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [str(Path(sys.executable).with_name("newsletter")), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


COMMANDS = {
    "import": ("subscribers", "import", "list.csv"),
    "status": ("status", "sample"),
    "migrate": ("db", "migrate"),
    "db status": ("db", "status"),
}


def one_line(done: subprocess.CompletedProcess[str], *said: str) -> str:
    everything = done.stdout + done.stderr
    for form in FORMS:
        assert form not in everything, f"the password shows: {everything!r}"
    assert done.returncode == 1, everything
    assert "Traceback" not in everything
    (line,) = done.stderr.splitlines()
    assert done.stdout == "", done.stdout  # nothing half-said before the error
    assert line.startswith("error: ") and " — " in line, line
    for words in said:
        assert words in line, line
    return line


@pytest.fixture
def root(tmp_path: Path) -> Path:
    workspace = sample_workspace(tmp_path / "ws")
    write_csv(workspace / "list.csv", "email\nann@example.org\n")
    return workspace


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"mysql://editor:{ENCODED}@db.example.org/news", "has the scheme 'mysql'"),
        (f"postgresql://editor:{ENCODED}@127.0.0.1:54x2/news", "its host or port cannot be read"),
        (f"postgresql://editor:{ENCODED}@[::1/news", "its host or port cannot be read"),
        (f"garbage {ENCODED}", "is not a URL"),
        (f"postgresql://editor:Zebra%ZZQuokka@127.0.0.1:{free_port()}/news", "a % that is not"),
        (f"postgresql://editor:{ENCODED}@127.0.0.1:1/news?sslmode=bogus", "not a valid Postgre"),
        (f"postgresql://editor:{ENCODED}@127.0.0.1:{free_port()}/news", "cannot reach the Postg"),
        ("postgresql://editor:Zebra@Quokka@127.0.0.1/news", "percent-encode an @"),
    ],
    ids=["scheme", "port", "bracket", "garbage", "percent", "sslmode", "down", "raw-at"],
)
def test_a_url_that_cannot_be_used_is_one_line(
    root: Path, command: str, url: str, said: str
) -> None:
    one_line(newsletter(root, url, *COMMANDS[command]), said)


@pytest.mark.parametrize("command", COMMANDS)
def test_a_refused_password(root: Path, roles: Roles, command: str) -> None:
    url = roles.url(roles.owner, password=quote("Zebra-wrong", safe=""))
    one_line(newsletter(root, url, *COMMANDS[command]), f"refused the password of {roles.owner}")


@pytest.mark.parametrize("command", COMMANDS)
def test_a_database_that_does_not_exist(root: Path, roles: Roles, command: str) -> None:
    url = roles.url(roles.owner, database="no_such_database")
    one_line(newsletter(root, url, *COMMANDS[command]), "does not exist", "createdb")


def test_a_user_who_may_read_but_not_write(root: Path, roles: Roles) -> None:
    url = roles.url(roles.reader)

    added = newsletter(root, url, "subscribers", "add", "ann@example.org")
    listed = newsletter(root, url, "subscribers", "list")
    status = newsletter(root, url, "status", "sample")
    migrated = newsletter(root, url, "db", "migrate")

    one_line(added, "may not write to the workspace's tables", "GRANT")
    assert listed.returncode == 0, listed.stderr
    one_line(status, "nothing has been sent for issue 'sample'")
    assert migrated.returncode == 0 and "up to date" in migrated.stdout


def test_a_user_who_may_read_but_not_write_imports(root: Path, roles: Roles) -> None:
    one_line(newsletter(root, roles.url(roles.reader), *COMMANDS["import"]), "may not write")


@pytest.mark.parametrize("command", ["status", "migrate"])
def test_a_user_who_may_not_create_the_schema(root: Path, roles: Roles, command: str) -> None:
    url = roles.url(roles.owner, database=roles.empty)

    line = one_line(newsletter(root, url, *COMMANDS[command]), "may not create")

    assert "`newsletter db migrate` once with the database owner's URL" in line


def test_the_server_version_is_checked() -> None:
    target = PostgresTarget(
        url=f"postgresql://editor:{ENCODED}@db/news", shown="postgresql://e@db/news"
    )
    check_server_version(MIN_SERVER_VERSION, target)
    check_server_version(170002, target)

    with pytest.raises(UserError) as old:
        check_server_version(120017, target)
    with pytest.raises(UserError) as older:
        check_server_version(90624, target)

    assert "version 12.17, older than the oldest supported (13)" in old.value.line()
    assert "version 9.6.24," in older.value.line()
    assert "upgrade the server" in old.value.line()


def test_the_running_server_passes_the_version_check(postgres_server: Server) -> None:
    with postgres_server.admin() as admin:
        assert admin.info.server_version >= MIN_SERVER_VERSION


def test_a_statement_after_a_failure_does_not_hide_it(postgres_url: str) -> None:
    from newsletter.db import open_database, transaction
    from newsletter.db.target import parse_target

    conn = open_database(parse_target(postgres_url, workspace=Path("."), where="test"))
    try:
        with pytest.raises(psycopg.errors.UndefinedTable), transaction(conn):
            try:
                conn.execute("SELECT * FROM no_such_table")
            finally:  # a cleanup, as the code's `finally` blocks do: "transaction is aborted"
                conn.execute("DELETE FROM subscribers")
    finally:
        conn.close()
