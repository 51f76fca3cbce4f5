"""`newsletter add` through the CLI as an editor runs it: what lands in issue.yaml, what is said."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from newsletter.audience.store import SubscriberStore
from newsletter.deliver.ledger import Ledger
from tests._cli import run
from tests._local_site import Route, closed_port_url, local_site
from tests._paths import fixture, page_dump
from tests._workspace import database

EMPTY_ISSUE = """\
# Editor's note: keep this comment.
subject: "Fresh"
preheader: "A preheader long enough for the inbox preview line to look right."
date: {date}
editor_note: unknown keys stay   # and so does this comment
sections: []
"""


def make_issue(
    workspace: Path, slug: str, date: str = "2026-11-01", text: str | None = None
) -> Path:
    path = workspace / "issues" / slug / "issue.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else EMPTY_ISSUE.format(date=date), encoding="utf-8")
    return path


def sections_of(path: Path) -> list[dict[str, Any]]:
    document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    return [
        {
            "title": section["title"],
            "layout": section["layout"],
            "articles": [(a["title"], a["url"], a.get("teaser", "")) for a in section["articles"]],
        }
        for section in document["sections"]
    ]


def markdown(tmp_path: Path, name: str, title: str, url: str) -> Path:
    path = tmp_path / name
    path.write_text(f"---\ntitle: {title}\nurl: {url}\n---\nA body paragraph for {title}.\n")
    return path


def test_page_dump_into_an_empty_issue_reproduces_the_sample(workspace: Path) -> None:
    path = make_issue(workspace, "fresh")
    result = run(workspace, "add", "fresh", str(page_dump()))
    assert result.exit_code == 0, result.stderr
    assert sections_of(path) == sections_of(workspace / "issues" / "sample" / "issue.yaml")
    assert result.stdout.splitlines()[0] == (
        "added to 'Top story': Iranians hold rallies to protest police raid on "
        "opposition’s Albania-based HQ"
    )
    assert result.stdout.splitlines()[-1] == "issues/fresh/issue.yaml: 11 added, 0 skipped"
    assert result.stderr == ""


def test_adding_again_skips_every_duplicate_and_leaves_the_file_alone(workspace: Path) -> None:
    path = make_issue(workspace, "fresh")
    run(workspace, "add", "fresh", str(page_dump()))
    before = path.read_bytes()
    result = run(workspace, "add", "fresh", str(page_dump()))
    assert result.exit_code == 0
    assert (
        "skipped (already in 'Latest'): When Will Ukraine Become the Outpost of European Defense?"
        in (result.stdout.splitlines())
    )
    assert (
        result.stdout.splitlines()[-1]
        == "issues/fresh/issue.yaml not changed (0 added, 11 skipped)"
    )
    assert path.read_bytes() == before


def test_comments_unknown_keys_and_the_editors_order_are_kept(
    workspace: Path, tmp_path: Path
) -> None:
    text = EMPTY_ISSUE.format(date="2026-11-01").replace(
        "sections: []\n",
        "sections:\n"
        "  - title: Picks   # the editor's favourites\n"
        "    layout: list\n"
        "    articles:\n"
        "      - title: Second by choice\n"
        "        url: https://example.org/b\n"
        "        my_note: check facts\n"
        "      - title: First by date\n"
        "        url: https://example.org/a\n",
    )
    path = make_issue(workspace, "fresh", text=text)
    story = markdown(tmp_path, "c.md", "Third", "https://example.org/c")
    result = run(workspace, "add", "fresh", str(story), "--section", "picks")
    assert result.exit_code == 0, result.stderr
    after = path.read_text(encoding="utf-8")
    assert after.startswith(text.split("      - title: First by date")[0])
    assert "# Editor's note: keep this comment." in after
    assert "editor_note: unknown keys stay   # and so does this comment" in after
    assert "my_note: check facts" in after
    assert [a[0] for a in sections_of(path)[0]["articles"]] == [
        "Second by choice",
        "First by date",
        "Third",
    ]


def test_tracking_parameters_fragments_and_slashes_do_not_make_a_new_article(
    workspace: Path, tmp_path: Path
) -> None:
    make_issue(workspace, "fresh")
    first = markdown(tmp_path, "a.md", "Story", "https://example.org/story/")
    again = markdown(
        tmp_path, "b.md", "Story again", "http://www.example.org/story?utm_source=x&fbclid=1#top"
    )
    result = run(workspace, "add", "fresh", str(first), str(again))
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "added to 'Articles': Story",
        "skipped (already in 'Articles'): Story again",
        "issues/fresh/issue.yaml: 1 added, 1 skipped",
    ]


def test_dry_run_changes_nothing(workspace: Path) -> None:
    path = make_issue(workspace, "fresh")
    before = path.read_bytes()
    result = run(workspace, "add", "fresh", str(page_dump()), "--dry-run")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == (
        "would add to 'Latest': "
        "After the “snapback,” large new set of U.S. Iran sanctions announced"
    )
    assert (
        result.stdout.splitlines()[-1]
        == "dry run: issues/fresh/issue.yaml not changed (11 to add, 0 skipped)"
    )
    assert path.read_bytes() == before


def test_each_failing_source_is_one_line_and_the_others_still_go_in(
    workspace: Path, tmp_path: Path
) -> None:
    path = make_issue(workspace, "fresh")
    good = markdown(tmp_path, "good.md", "Good one", "https://example.org/good")
    bad_front_matter = tmp_path / "bad.md"
    bad_front_matter.write_text("---\ntitle: [oops\n---\n")
    binary = tmp_path / "photo.html"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    unreachable = closed_port_url()
    cnn = fixture("pages/cnn_article.html").read_bytes()
    routes = {"/slow": Route(cnn, delay=2.0), "/story": Route(cnn)}
    with local_site(routes) as site:
        result = run(
            workspace,
            "add",
            "fresh",
            str(good),
            site.url("/missing"),
            site.url("/slow"),
            unreachable,
            str(fixture("feeds/notafeed.html")),
            str(binary),
            str(bad_front_matter),
            site.url("/story"),
            "--timeout",
            "0.3",
        )
    hint = "give an article URL, an .html page, a feed, a Markdown (.md) or a text (.txt) file"
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {site.url('/missing')}: HTTP 404 Not Found — check the address; "
        "the page may have moved or been removed",
        f"error: {site.url('/slow')}: no answer within 0.3 s — try again later, or allow more time "
        "with --timeout or NEWSLETTER_HTTP_TIMEOUT",
        f"error: {unreachable}: cannot connect (Connection refused) — check the address and your "
        "network connection",
        f"error: {fixture('feeds/notafeed.html')}: the page does not say its address (no canonical "
        "link or og:url) — give it with --url ORIGINAL",
        f"error: {binary}: a PNG image, not a page, feed or text — {hint}",
        f"error: {bad_front_matter}:2: front matter is not valid YAML (did not find expected ',' "
        "or ']') — check the quoting and indentation between the --- lines",
    ]
    assert result.stdout.splitlines() == [
        "added to 'Articles': Good one",
        "added to 'Articles': After storm, forecasters see smooth sailing for Thanksgiving",
        "note: 1 http:// link(s) saved as https:// (email clients block plain http); check that"
        " they open",
        "issues/fresh/issue.yaml: 2 added, 0 skipped",
    ]
    assert [a[0] for a in sections_of(path)[0]["articles"]] == [
        "Good one",
        "After storm, forecasters see smooth sailing for Thanksgiving",
    ]
    assert sorted(p.name for p in path.parent.iterdir()) == ["issue.yaml"]  # no temp files left


def test_broken_and_empty_feeds(workspace: Path, tmp_path: Path) -> None:
    path = make_issue(workspace, "fresh")
    empty = tmp_path / "empty.rss"
    empty.write_text('<rss version="2.0"><channel><title>Quiet</title></channel></rss>')
    result = run(
        workspace, "add", "fresh", str(empty), str(fixture("feeds/illegally-nested.xml")), "-n", "2"
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {empty}: the feed has no items — try again when it has news"
    ]
    assert result.stdout.splitlines() == [
        "added to 'Articles': My Professional Armchair Analysis of CES",
        "added to 'Articles': Did We Learn Nothing From the Dot-Com Bust?",
        f"note: {fixture('feeds/illegally-nested.xml')}: "
        'feed "PCMag.com: the Official John C. Dvorak RSS Feed" from http://www.pcmag.com',
        f"note: {fixture('feeds/illegally-nested.xml')}: "
        "10 empty item(s) skipped (the feed is malformed)",
        "note: 2 http:// link(s) saved as https:// (email clients block plain http); check that"
        " they open",
        "issues/fresh/issue.yaml: 2 added, 0 skipped",
    ]
    text = path.read_text()
    # FeedBurner's origLink sits on the illegally nested inner item: still the article's address.
    assert "url: http://" not in text and "url: https://www.pcmag.com/article2/" in text
    assert "feedproxy.google.com" not in text


def test_feed_with_since_and_section(workspace: Path) -> None:
    path = make_issue(workspace, "fresh")
    result = run(
        workspace,
        "add",
        "fresh",
        str(fixture("feeds/russcox.atom")),
        "--since",
        "2019-01-01",
        "-s",
        "Reading",
    )
    assert result.exit_code == 0, result.stderr
    [section] = sections_of(path)
    assert section["title"] == "Reading"
    assert [a[0] for a in section["articles"]] == [
        "Transparent Logs for Skeptical Clients",
        "An Encoded Tree Traversal",
        "Our Software Dependency Problem",
    ]


def _record_sent(workspace: Path, slug: str) -> None:
    """What a finished `newsletter send SLUG` leaves in the ledger."""
    conn = database(workspace)
    try:
        if SubscriberStore(conn).get("reader@example.org") is None:
            SubscriberStore(conn).add("reader@example.org")
        ledger = Ledger(conn)
        ledger.prepare(slug)
        batch = ledger.claim_batch(slug, 1000)
        assert batch is not None
        ledger.mark_sent(batch.id, "message-id")
    finally:
        conn.close()


def test_warns_when_an_article_already_went_out(workspace: Path) -> None:
    make_issue(workspace, "later", date="2026-12-08")
    quiet = run(workspace, "add", "later", str(page_dump()), "--dry-run")
    assert quiet.stderr == "", "the sample was never sent: nothing to warn about"
    _record_sent(workspace, "sample")
    result = run(workspace, "add", "later", str(page_dump()))
    assert result.exit_code == 0
    warnings = result.stderr.splitlines()
    assert len(warnings) == 11
    assert warnings[0] == (
        "warning: 'Iranians hold rallies to protest police raid on opposition’s Albania-based HQ' "
        "already went out in issue sample (2026-12-01)"
    )
    quiet = run(workspace, "add", "later", str(page_dump()), "--recent", "0", "--dry-run")
    assert quiet.stderr == ""


def test_only_the_last_n_sent_issues_count(workspace: Path, tmp_path: Path) -> None:
    story = markdown(tmp_path, "s.md", "Story", "https://example.org/story")
    make_issue(workspace, "old", date="2026-10-01")
    run(workspace, "add", "old", str(story))
    _record_sent(workspace, "old")
    _record_sent(workspace, "sample")
    make_issue(workspace, "next", date="2026-12-08")
    result = run(workspace, "add", "next", str(story), "--recent", "1", "--dry-run")
    assert result.stderr == "", "only the sample (the last sent) is looked at"
    result = run(workspace, "add", "next", str(story), "--recent", "2")
    assert result.stderr.splitlines() == [
        "warning: 'Story' already went out in issue old (2026-10-01)",
    ]


def test_url_option_applies_to_one_source(workspace: Path) -> None:
    make_issue(workspace, "fresh")
    result = run(workspace, "add", "fresh", "a.html", "b.html", "--url", "https://example.org/a")
    assert result.exit_code == 1
    assert (
        result.stderr
        == "error: --url names the address of one source — give one SOURCE with --url\n"
    )


def test_saved_page_with_url_option(workspace: Path) -> None:
    path = make_issue(workspace, "fresh")
    result = run(
        workspace,
        "add",
        "fresh",
        str(fixture("feeds/notafeed.html")),
        "--url",
        "https://example.org/move-along",
    )
    assert result.exit_code == 0, result.stderr
    assert sections_of(path)[0]["articles"] == [
        (
            "The Is Not The Feed You're Looking For",
            "https://example.org/move-along",
            "Move Along. Move Along.",
        )
    ]


def test_broken_issue_file_stops_before_any_download(workspace: Path) -> None:
    path = make_issue(workspace, "fresh", text="subject: [unclosed\n")
    with local_site({}) as site:
        result = run(workspace, "add", "fresh", site.url("/story"))
        assert site.requests == []
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {path}:2: YAML syntax error")
    assert path.read_text() == "subject: [unclosed\n"


def test_missing_issue(workspace: Path) -> None:
    result = run(workspace, "add", "nope", str(page_dump()))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {workspace / 'issues' / 'nope' / 'issue.yaml'}: file not found "
        "— start the issue with `newsletter new SLUG`\n"
    )


def test_bad_since_is_a_usage_error(workspace: Path) -> None:
    make_issue(workspace, "fresh")
    result = run(workspace, "add", "fresh", str(page_dump()), "--since", "last week")
    assert result.exit_code == 2
    assert "'last week' is not a date; write it as YYYY-MM-DD" in result.stderr


def test_help_shows_an_example() -> None:
    result = run(None, "add", "--help")
    assert result.exit_code == 0
    assert "Example:  newsletter add 2026-12-01 https://example.org/story" in result.stdout
    for option in ("--section", "--limit", "--since", "--url", "--dry-run", "--timeout"):
        assert option in result.stdout


@pytest.mark.parametrize("layout_owner", ["Top story"])
def test_a_second_lead_becomes_a_list(workspace: Path, layout_owner: str) -> None:
    text = EMPTY_ISSUE.format(date="2026-11-01").replace(
        "sections: []\n",
        "sections:\n  - title: Cover\n    layout: lead\n    articles: []\n",
    )
    path = make_issue(workspace, "fresh", text=text)
    result = run(workspace, "add", "fresh", str(page_dump()))
    assert result.exit_code == 0
    assert (
        f"note: section '{layout_owner}' made a list: the issue already has a lead" in result.stdout
    )
    assert [(s["title"], s["layout"]) for s in sections_of(path)][:2] == [
        ("Cover", "lead"),
        ("Top story", "list"),
    ]


def test_a_file_of_another_kind_is_refused(workspace: Path, tmp_path: Path) -> None:
    make_issue(workspace, "fresh")
    table = tmp_path / "list.csv"
    table.write_text("a,b\n1,2\n")
    result = run(workspace, "add", "fresh", str(table))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {table}: a .csv file is not a page, feed, Markdown or text dump — give an article"
        " URL, an .html page, a feed, a Markdown (.md) or a text (.txt) file\n"
    )
