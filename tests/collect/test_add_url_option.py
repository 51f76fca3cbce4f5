"""`--url` is never silently ignored: text dumps and pages with a canonical link use it."""

from __future__ import annotations

from pathlib import Path

from tests._cli import run
from tests._paths import page_dump
from tests.collect.test_add_cli import make_issue, sections_of

ORIGINAL = "https://news.example.org/2026/12/harbour-reopens"


def test_text_note_gets_the_url_option_as_its_address(workspace: Path, tmp_path: Path) -> None:
    path = make_issue(workspace, "fresh")
    note = tmp_path / "note.txt"
    note.write_text("Harbour reopens\n\nThe harbour reopened on Monday after repairs.\n")
    result = run(workspace, "add", "fresh", str(note), "--url", ORIGINAL)
    assert result.exit_code == 0, result.stderr
    assert sections_of(path)[0]["articles"] == [
        ("Harbour reopens", ORIGINAL, "The harbour reopened on Monday after repairs.")
    ]
    assert not any(line.startswith("note:") for line in result.stdout.splitlines())


def test_page_dump_headline_gets_the_url_option_and_the_rest_are_explained(
    workspace: Path,
) -> None:
    path = make_issue(workspace, "fresh")
    result = run(workspace, "add", "fresh", str(page_dump()), "--url", ORIGINAL)
    assert result.exit_code == 0, result.stderr
    sections = sections_of(path)
    assert sections[0]["title"] == "Top story"
    assert sections[0]["articles"][0][1] == ORIGINAL
    others = [a[1] for s in sections[1:] for a in s["articles"]]
    assert len(others) == 10
    assert all(u.startswith("https://example.org/placeholder/") for u in others)
    assert (
        f"note: {page_dump()}: --url is the address of the headline story; the other 10"
        " got placeholder addresses (the dump does not give theirs)"
    ) in result.stdout.splitlines()


def test_url_option_wins_over_the_canonical_link_and_says_so(
    workspace: Path, tmp_path: Path
) -> None:
    path = make_issue(workspace, "fresh")
    page = tmp_path / "saved.html"
    page.write_text(
        "<html><head><title>Harbour reopens</title>"
        '<link rel="canonical" href="https://syndication.example.com/copy/123">'
        '<meta name="description" content="The harbour reopened on Monday."></head>'
        "<body><p>The harbour reopened on Monday.</p></body></html>",
        encoding="utf-8",
    )
    result = run(workspace, "add", "fresh", str(page), "--url", ORIGINAL)
    assert result.exit_code == 0, result.stderr
    assert sections_of(path)[0]["articles"] == [
        ("Harbour reopens", ORIGINAL, "The harbour reopened on Monday.")
    ]
    assert (
        f"note: {page}: saved with --url {ORIGINAL}, not the page's own address"
        " https://syndication.example.com/copy/123"
    ) in result.stdout.splitlines()
