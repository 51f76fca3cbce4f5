"""The archive: served at /archive/ and written by `newsletter archive DIR`."""

from __future__ import annotations

import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import httpx
import pytest

from newsletter.config import load_settings
from newsletter.db import transaction
from tests._cli import run
from tests._workspace import add_subscribers, database, numbered, sample_workspace, stub_env
from tests.sendgrid_stub import (
    SendGridStub,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)
from tests.web._server import serve

# Each test runs on SQLite and on PostgreSQL (the `engine` fixture).
pytestmark = pytest.mark.usefixtures("engine")

ATOM = "{http://www.w3.org/2005/Atom}"


def _sent_two_and_rehearsed_one(root: Path, stub: SendGridStub) -> None:
    stub_env(root, stub.url)
    add_subscribers(root, numbered(2))
    shutil.copytree(root / "issues" / "sample", root / "issues" / "second")
    second = root / "issues" / "second" / "issue.yaml"
    second.write_text(
        second.read_text(encoding="utf-8").replace(
            'subject: "Albania raid', 'subject: "Second & \\"last\\" issue: Albania raid'
        ),
        encoding="utf-8",
    )
    shutil.copytree(root / "issues" / "sample", root / "issues" / "rehearsal")
    for slug in ("sample", "second"):
        assert run(root, "send", slug, "--yes", "--no-sync").exit_code == 0
    assert run(root, "send", "rehearsal", "--backend", "outbox", "--yes").exit_code == 0


def test_the_archive_lists_what_went_out_newest_first(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    root = sample_workspace(tmp_path / "ws")
    _sent_two_and_rehearsed_one(root, sendgrid_stub)
    with serve(load_settings(root)) as base:
        index = httpx.get(f"{base}/archive/")
        bare = httpx.get(f"{base}/archive", follow_redirects=False)
        issue = httpx.get(f"{base}/archive/second/")
        feed = httpx.get(f"{base}/archive/feed.xml")
        static_link = httpx.get(f"{base}/archive/second/index.html")
        missing = [httpx.get(f"{base}/archive/{slug}/") for slug in ("rehearsal", "nope", "..")]
    assert index.status_code == 200
    assert index.text.index("Second &amp; &#34;last&#34; issue") < index.text.index(
        "Albania raid on Ashraf 3 sparks"
    )
    assert "rehearsal/" not in index.text  # an outbox rehearsal reached nobody
    assert "noindex" not in index.text  # the archive is public, unlike the personal pages
    assert static_link.status_code == 200  # the static copy's links work on the server too
    assert bare.status_code == 308 and bare.headers["location"] == "archive/"
    assert issue.status_code == 200
    assert issue.content == (root / "build" / "second" / "web.html").read_bytes()
    assert "%%" not in issue.text and "numbered" not in issue.text
    assert "img-src https:" in issue.headers["content-security-policy"]
    assert [answer.status_code for answer in missing] == [404, 404, 404]
    assert feed.headers["content-type"].startswith("application/atom+xml")
    entries = ET.fromstring(feed.content).findall(f"{ATOM}entry")
    assert [entry.findtext(f"{ATOM}id") for entry in entries] == [
        "https://example.org/archive/second/",
        "https://example.org/archive/sample/",
    ]
    assert entries[0].findtext(f"{ATOM}title") == (
        'Second & "last" issue: Albania raid on Ashraf 3 sparks protests across Europe'
    )


def test_newsletter_archive_writes_the_same_pages_as_a_static_site(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    root = sample_workspace(tmp_path / "ws")
    _sent_two_and_rehearsed_one(root, sendgrid_stub)
    target = tmp_path / "site"
    outcome = run(root, "archive", str(target))
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.stdout == f"wrote the archive of 2 issues to {target}/ (index.html, feed.xml)\n"
    assert sorted(path.name for path in target.iterdir()) == [
        "feed.xml",
        "index.html",
        "sample",
        "second",
    ]
    index = (target / "index.html").read_text(encoding="utf-8")
    assert 'href="second/index.html"' in index and 'href="sample/index.html"' in index
    assert (target / "second" / "index.html").read_bytes() == (
        root / "build" / "second" / "web.html"
    ).read_bytes()
    ET.fromstring((target / "feed.xml").read_bytes())  # well-formed


def test_archive_into_a_file_or_a_missing_parent_is_one_line(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    (tmp_path / "file").write_text("x")
    for target, said in (
        (tmp_path / "file", "it is a file"),
        (tmp_path / "missing" / "site", "does not exist"),
    ):
        outcome = run(root, "archive", str(target))
        assert outcome.exit_code == 1
        (line,) = outcome.stderr.splitlines()
        assert line.startswith(f"error: {target}: ") and said in line
    empty = run(root, "archive", str(tmp_path / "empty"))
    assert empty.exit_code == 0
    assert "archive of 0 issues" in empty.stdout


def test_the_static_archive_is_readable_by_a_web_server(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    import os

    root = sample_workspace(tmp_path / "ws")
    _sent_two_and_rehearsed_one(root, sendgrid_stub)
    previous = os.umask(0o022)
    try:
        assert run(root, "archive", str(tmp_path / "site")).exit_code == 0
    finally:
        os.umask(previous)
    for path in (tmp_path / "site").rglob("*.*"):
        assert path.stat().st_mode & 0o777 == 0o644, path
    # The outbox's files name their reader: they stay private.
    for path in (root / "outbox" / "rehearsal").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_archive_never_writes_into_a_folder_of_other_files(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    busy = tmp_path / "website"
    busy.mkdir()
    (busy / "index.html").write_text("<h1>my site</h1>")
    outcome = run(root, "archive", str(busy))
    assert outcome.exit_code == 1
    assert "holds other files and no archive written before" in outcome.stderr
    assert (busy / "index.html").read_text() == "<h1>my site</h1>"
    fresh = tmp_path / "archive"
    assert run(root, "archive", str(fresh)).exit_code == 0
    assert run(root, "archive", str(fresh)).exit_code == 0  # updated in place


def test_no_slug_can_redirect_to_another_site(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    with serve(load_settings(root)) as base:
        evil = [
            httpx.get(f"{base}/archive/{slug}", follow_redirects=False)
            for slug in ("https:evil.com", "http:evil.com", "%2F%2Fevil.com", "..")
        ]
        fine = httpx.get(f"{base}/archive/sample", follow_redirects=False)
    for answer in evil:
        assert answer.status_code == 404, answer.headers
        assert "location" not in answer.headers
    assert fine.status_code == 308 and fine.headers["location"] == "/archive/sample/"


def test_an_issue_sendgrid_still_holds_is_not_in_the_archive_yet(
    tmp_path: Path, sendgrid_stub: SendGridStub
) -> None:
    import datetime as dt

    root = sample_workspace(tmp_path / "ws")
    _sent_two_and_rehearsed_one(root, sendgrid_stub)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=40)
    conn = database(root)
    with transaction(
        conn
    ):  # as a hand-over to SendGrid leaves it: batches sent, SendGrid holds them
        conn.execute(
            "INSERT INTO schedules (issue, send_at_utc, tz, created) VALUES (?, ?, 'UTC', ?)",
            ("second", later.isoformat(), later.isoformat()),
        )
        conn.execute(
            "INSERT INTO sendgrid_batches (issue, batch_id, send_at, state, updated) "
            "VALUES ('second', 'b1', ?, 'submitted', ?)",
            (int(later.timestamp()), later.isoformat()),
        )
    conn.close()
    with serve(load_settings(root)) as base:
        index = httpx.get(f"{base}/archive/").text
        held = httpx.get(f"{base}/archive/second/")
        feed = httpx.get(f"{base}/archive/feed.xml").text
    assert "second/" not in index and held.status_code == 404
    assert "/archive/second/" not in feed
    assert "sample/" in index
