"""The CSV import on each engine: new rows, duplicates in the file, rows already on the
list, and an opt-out in the file, in one import and again in a second one."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.store import SubscriberStore
from newsletter.db import open_database
from tests._workspace import database_target


def test_import_on_each_engine(engine: str, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text(
        "email,name,status\n"
        "ada@example.org,Ada,\n"
        "bob@example.org,Bob,\n"
        "ADA@example.org,Ada again,\n"  # a duplicate of line 2
        "cy@example.org,Cy,unsubscribed\n",
        encoding="utf-8",
    )
    second = tmp_path / "second.csv"
    second.write_text(
        "email,name,status\n"
        "bob@example.org,Bob,\n"  # already on the list
        "ada@example.org,Ada,unsubscribed\n"  # marked unsubscribed, as the file says
        "cy@example.org,Cy,\n"  # kept unsubscribed
        "dee@example.org,Dee,\n",
        encoding="utf-8",
    )
    conn = open_database(database_target(tmp_path))
    try:
        store = SubscriberStore(conn)
        report = store.import_csv(first)
        assert (report.added, report.duplicates) == (3, 1)
        report = store.import_csv(second)
        assert (report.added, report.already_subscribed) == (1, 1)
        assert report.marked == {"unsubscribed": 1}
        assert report.kept == {"unsubscribed": 1}
        assert store.stats()["active"] == 2
    finally:
        conn.close()
