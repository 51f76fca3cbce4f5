"""Workspace helpers for the tests: a fresh or sample workspace, its database, a list,
CSV files, messages and the ledger's view of an issue."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from newsletter.audience.unsubscribe import UnsubscribeLinks
from newsletter.config import Settings, load_settings
from newsletter.db import Connection, Target, is_postgres, open_database, transaction
from newsletter.db.target import parse_target
from newsletter.deliver.ledger import Recipient
from newsletter.deliver.message import Address, Message
from newsletter.workspace import init_workspace

REPO = Path(__file__).resolve().parent.parent
SECRET = "test-unsubscribe-secret-0123456789"
API_KEY = "SG.test"


def make_workspace(tmp_path: Path) -> Path:
    """A workspace as `newsletter init` makes it, in tmp_path/ws."""
    root = tmp_path / "ws"
    init_workspace(root)
    return root


def database_target(tmp_path: Path) -> Target:
    """The test's database: DATABASE_URL's (the `engine` fixture's) or a file in tmp_path."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return parse_target(url, workspace=tmp_path, where="DATABASE_URL")
    return tmp_path / "newsletter.db"


def wait_for_other_sessions(
    conn: Connection, timeout: float = 10.0, *, alive: Collection[int] = ()
) -> None:
    """PostgreSQL: wait until the server has ended the sessions of processes that died
    (their advisory locks go with them); SQLite: nothing to wait for.

    `alive`: the PIDs of processes still running (another sender), whose sessions stay.
    """
    if not is_postgres(conn):
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kept = set().union(*(tcp_ports(pid) for pid in alive))
        others = conn.execute(
            "SELECT client_port FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        if all(port in kept for (port,) in others):
            return
        time.sleep(0.02)
    raise AssertionError("sessions of killed processes are still open")


def tcp_ports(pid: int) -> set[int]:
    """The local ports of a running process's TCP sockets (Linux /proc); none once it ended.

    A session's `client_port` in pg_stat_activity is one of them."""
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    except OSError:
        return set()
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def database(workspace: Path) -> Connection:
    """The workspace's database, opened the way the commands open it."""
    return open_database(load_settings(workspace).database)


def query(workspace: Path, sql: str, *args: object) -> list[tuple[Any, ...]]:
    """Rows of one query on the workspace's database (either engine)."""
    conn = database(workspace)
    try:
        return [tuple(row) for row in conn.execute(sql, args).fetchall()]
    finally:
        conn.close()


def write_csv(path: Path, text: str, *, bom: bool = False, encoding: str = "utf-8") -> Path:
    """Write `text` encoded as given, line endings untouched, optionally after a UTF-8 BOM."""
    data = text.encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


def generate_csv(path: Path, rows: int, *, start: int = 0) -> Path:
    """A large list: email,name,first_name,city with `rows` distinct addresses."""
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write("email,name,first_name,city\n")
        for i in range(start, start + rows):
            stream.write(f"reader{i}@example.org,Reader {i},Reader,City {i % 97}\n")
    return path


def insert_subscribers(conn: Connection, emails: Iterable[str], *, status: str = "active") -> None:
    """Bulk-insert subscribers without validation (fast set-up for ledger tests)."""
    with transaction(conn):
        conn.executemany(
            "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
            "created, updated) VALUES (?, ?, ?, NULL, '{}', ?, 'now', 'now')",
            ((email, email.lower(), f"Name of {email.split('@')[0]}", status) for email in emails),
        )


def numbered_users(count: int, start: int = 0) -> list[str]:
    """user000000@example.org, ... (the ledger tests' list)."""
    return [f"user{i:06d}@example.org" for i in range(start, start + count)]


def sample_workspace(root: Path, delivery: str = "") -> Path:
    """The repository's newsletter.toml and sample issue, copied to `root`.

    `delivery` holds extra lines for the [delivery] table, e.g. "batch_size = 2". The
    sample's links are example.org placeholders, which a real send refuses; these tests
    send them on purpose, to a local stand-in, so the workspace allows them.
    """
    root.mkdir(parents=True, exist_ok=True)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    assert config.count("[delivery]\n") == 1
    config = config.replace("[delivery]\n", f"[delivery]\nallow_placeholders = true\n{delivery}\n")
    (root / "newsletter.toml").write_text(config, encoding="utf-8")
    shutil.copytree(REPO / "issues" / "sample", root / "issues" / "sample")
    return root


def write_env(root: Path, **values: str) -> None:
    """The workspace's .env (how editors give keys), one NAME=value a line."""
    lines = [f"{name}={value}" for name, value in values.items()]
    (root / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def stub_env(root: Path, url: str, *, api_key: str = API_KEY) -> None:
    write_env(
        root,
        SENDGRID_API_KEY=api_key,
        SENDGRID_API_HOST=url,
        NEWSLETTER_UNSUBSCRIBE_SECRET=SECRET,
    )


def settings_of(root: Path) -> Settings:
    return load_settings(root)


def add_subscribers(
    root: Path,
    emails: Iterable[str],
    *,
    status: str = "active",
    first_name: str | None = "Reader",
) -> None:
    """Insert subscribers directly (fast set-up; the import has its own tests)."""
    conn = database(root)
    try:
        with transaction(conn):
            conn.executemany(
                "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
                "created, updated) VALUES (?, ?, ?, ?, '{}', ?, 'now', 'now')",
                (
                    (email, email.lower(), f"Name {email.split('@')[0]}", first_name, status)
                    for email in emails
                ),
            )
    finally:
        conn.close()


def numbered(count: int, start: int = 0) -> list[str]:
    """reader000000@example.org, ... (the send and schedule tests' list)."""
    return [f"reader{i:06d}@example.org" for i in range(start, start + count)]


def recipient(email: str, name: str | None = None, first_name: str | None = None) -> Recipient:
    return Recipient(0, email, name, first_name, {})


def links(list_name: str = "balkan-brief") -> UnsubscribeLinks:
    return UnsubscribeLinks("https://example.org/unsubscribe", list_name, SECRET)


def simple_message(
    *,
    subject: str = "The spring issue",
    html: str = '<p>Hi %%first_name%%,</p><p><a href="%%unsubscribe_url%%">Unsubscribe</a></p>',
    text: str = "Hi %%first_name%%,\n\nUnsubscribe: %%unsubscribe_url%%\n",
    asm_group_id: int | None = None,
    sender_name: str = "The Editors",
) -> Message:
    return Message(
        issue="spring",
        subject=subject,
        sender=Address("newsletter@example.org", sender_name),
        reply_to="editors@example.org",
        html=html,
        text=text,
        list_name="balkan-brief",
        list_domain="example.org",
        unsubscribe=links(),
        categories=("newsletter",),
        asm_group_id=asm_group_id,
    )


def ledger_states(root: Path, issue: str) -> dict[str, str]:
    """email -> state of every ledger row of the issue."""
    from newsletter.deliver.ledger import STATES, Ledger

    conn = database(root)
    try:
        ledger = Ledger(conn)
        return {email: state for state in STATES for email, _ in ledger.recipients(issue, state)}
    finally:
        conn.close()


@contextmanager
def read_only_view(root: Path, scratch: Path) -> Iterator[Path]:
    """`root` as a process sees it on a read-only mount (root) or with read-only modes."""
    if os.geteuid() != 0:
        for path in (root / "newsletter.db", root):
            path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield root
        finally:
            root.chmod(0o700)
        return
    view = scratch / "read-only-view"
    view.mkdir()
    # Root ignores file modes: only a read-only mount makes the files unwritable for it.
    subprocess.run(["mount", "--bind", str(root), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)
