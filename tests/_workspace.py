"""Helpers for the list and ledger tests: a fresh workspace, its database, CSV files."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

from newsletter.config import load_settings
from newsletter.db import open_database, transaction
from newsletter.workspace import init_workspace


def make_workspace(tmp_path: Path) -> Path:
    """A workspace as `newsletter init` makes it, in tmp_path/ws."""
    root = tmp_path / "ws"
    init_workspace(root)
    return root


def database(workspace: Path) -> sqlite3.Connection:
    """The workspace's database, opened the way the commands open it."""
    return open_database(load_settings(workspace).database_path)


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


def insert_subscribers(
    conn: sqlite3.Connection, emails: Iterable[str], *, status: str = "active"
) -> None:
    """Bulk-insert subscribers without validation (fast set-up for ledger tests)."""
    with transaction(conn):
        conn.executemany(
            "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
            "created, updated) VALUES (?, ?, ?, NULL, '{}', ?, 'now', 'now')",
            ((email, email.lower(), f"Name of {email.split('@')[0]}", status) for email in emails),
        )


def numbered(count: int, start: int = 0) -> list[str]:
    return [f"user{i:06d}@example.org" for i in range(start, start + count)]
