"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary directory,
listening on 127.0.0.1 only, stopped at the end of the session.

NEWSLETTER_TEST_POSTGRES_URL (a superuser's URL, e.g. postgresql://postgres:pw@127.0.0.1/
postgres) uses a server that is already running instead.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

URL_ENV = "NEWSLETTER_TEST_POSTGRES_URL"
PASSWORD = "pg-test-" + uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Server:
    admin_url: str  # a superuser on the maintenance database
    host: str
    port: int
    password: str
    user: str = "postgres"
    data_dir: Path | None = None  # the cluster's directory, when this session started it

    def postmaster_pid(self) -> int | None:
        """The server's main process, when this session started it (for measuring it)."""
        if self.data_dir is None:
            return None
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def url(self, database: str, *, user: str | None = None, password: str | None = None) -> str:
        who = user or self.user
        secret = self.password if password is None else password
        return f"postgresql://{who}:{secret}@{self.host}:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.admin_url, autocommit=True)

    @contextmanager
    def fresh_database(self) -> Iterator[str]:
        """A new, empty database for one test; its URL. Dropped afterwards."""
        name = "t_" + uuid.uuid4().hex[:16]
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        try:
            yield self.url(name)
        finally:
            with self.admin() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL is not installed (no initdb): apt-get install postgresql, "
        f"or set {URL_ENV} to a running server's superuser URL"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(*, durable: bool = False) -> Iterator[Server]:
    """The server of NEWSLETTER_TEST_POSTGRES_URL, or a new cluster for this session.

    The cluster skips fsync (a test's data need not survive a power cut) unless `durable`:
    a benchmark compares it with SQLite, which waits for the disk.
    """
    given = os.environ.get(URL_ENV)
    if given:
        parts = psycopg.conninfo.conninfo_to_dict(given)
        yield Server(
            admin_url=given,
            host=str(parts.get("host", "127.0.0.1")),
            port=int(parts.get("port", 5432)),
            password=str(parts.get("password", "")),
            user=str(parts.get("user", "postgres")),
        )
        return
    bin_dir = _binaries()
    root = Path(tempfile.mkdtemp(prefix="newsletter-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, pwfile = root / "data", root / "pw"
    pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
    if as_user:
        shutil.chown(pwfile, "postgres", "postgres")
    port = _free_port()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE, "check": True}
    try:
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ],
            **quiet,  # type: ignore[arg-type]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} "
            "-c max_connections=300"
        )
        if not durable:
            options += " -c fsync=off -c full_page_writes=off"
        subprocess.run(
            [
                *as_user,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            **quiet,  # type: ignore[arg-type]
        )
    except subprocess.CalledProcessError as failed:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"cannot start PostgreSQL: {failed.stderr.decode()[-500:]}") from None
    server = Server(
        admin_url=f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres",
        host="127.0.0.1",
        port=port,
        password=PASSWORD,
        data_dir=data,
    )
    try:
        yield server
    finally:
        subprocess.run(
            [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
