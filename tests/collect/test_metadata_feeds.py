"""Issue 14 on feeds: item identity, order, real links, relative links, lead pictures and the
feed's own name — on real feeds from ../shared and on small hand-written ones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from newsletter.collect.merge import identity, shared_pages
from newsletter.collect.readers.base import Document, ReadOptions
from newsletter.collect.readers.feed import feed_items, read_feed
from newsletter.collect.readers.feed_links import unwrap_redirect
from newsletter.collect.readers.registry import read_source
from tests._cli import run
from tests._paths import fixture


def items(name: str, url: str | None = None):  # type: ignore[no-untyped-def]
    found, _ = feed_items(
        Document(location=name, content=fixture(f"feeds/{name}").read_bytes(), base_url=url)
    )
    return found


def rss(body: str, channel: str = "<title>T</title><link>https://example.org/</link>") -> bytes:
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel>{channel}{body}</channel></rss>'.encode()
    )


def parse(content: bytes):  # type: ignore[no-untyped-def]
    found, _ = feed_items(Document(location="feed.xml", content=content))
    return found


# --- encoding -------------------------------------------------------------------------------


def test_a_utf8_feed_with_one_stray_byte_is_still_utf8() -> None:
    content = fixture("feeds/aktuality.rss").read_bytes()
    at = content.index(b"<item>")
    found = parse(content[:at] + b"<!-- caf\xe9 -->" + content[at:])
    assert found[0].title == "Analytici Goldman Sachs zvýšili odhad rastu ekonomiky USA"
    latin1 = b'<?xml version="1.0" encoding="iso-8859-1"?>' + rss(
        "<item><title>Caf\u00e9 M\u00fcller</title><link>https://x.org/a</link></item>"
    )[21:].decode().encode("latin-1")
    assert parse(latin1)[0].title == "Café Müller"  # a real Latin-1 feed stays Latin-1


# --- identity: #fragment posts of one page ---------------------------------------------------

SCRIPTING = rss(
    "".join(
        f"<item><description>Post {n} of the day, long enough to be a post.</description>"
        f"<link>http://scripting.com/2024/05/06.html#a{n}</link>"
        f"<pubDate>Mon, 06 May 2024 1{n}:00:00 GMT</pubDate></item>"
        for n in (1, 2, 3)
    )
)


def test_posts_of_one_page_told_apart_by_fragment(workspace: Path, tmp_path: Path) -> None:
    feed = tmp_path / "scripting.xml"
    feed.write_bytes(SCRIPTING)
    result = run(workspace, "add", "sample", str(feed), "--section", "Links")
    assert "3 added, 0 skipped" in result.stdout
    again = run(workspace, "add", "sample", str(feed), "--section", "Links")
    assert "0 added, 3 skipped" in again.stdout


def test_a_lone_fragment_is_still_no_identity() -> None:
    urls = ["https://x.com/a#top", "https://x.com/b#p1", "https://x.com/b#p2"]
    shared = shared_pages(urls)
    assert identity("https://x.com/a#comments", shared) == identity("https://x.com/a", shared)
    assert identity("https://x.com/b#p1", shared) != identity("https://x.com/b#p2", shared)


# --- order: newest by time, not by day -------------------------------------------------------


def test_newest_first_by_the_time_of_day() -> None:
    found = parse(SCRIPTING)
    assert [item.url.rsplit("#", 1)[1] for item in found] == ["a3", "a2", "a1"]
    ruben = items("rubenerd.rss")
    assert ruben[0].title == "The great Commodore/Atari engineer swap"  # 08:53 before 07:55
    assert ruben[0].date == dt.date(2023, 1, 11)  # the publisher's day (+1100), not UTC's


# --- real links --------------------------------------------------------------------------


def test_tracking_redirects_give_way_to_the_article() -> None:
    assert items("TechCrunch.xml")[0].url.startswith("http://techcrunch.com/2011/11/02/")
    nested = items("illegally-nested.xml")  # origLink on an illegally nested inner <item />
    assert (
        nested[0].url
        == "http://www.pcmag.com/article2/0,2817,2525649,00.asp?kc=PCRSS03079TX1K0000584"
    )
    alerts = items("google_alerts_atom.xml")
    assert alerts[1].url == "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    assert unwrap_redirect("https://example.com/url/page") == "https://example.com/url/page"


def test_relative_links_resolve_in_their_own_scope() -> None:
    scoped = items("rss-with-item-scoped-html-base.xml")
    assert [i.url for i in scoped] == [
        "https://example.com/first/first",
        "https://example.com/second",
    ]
    tpm = items("tpm.atom")  # root-relative, no xml:base; the feed states talkingpointsmemo.com
    assert tpm[0].url == (
        "http://talkingpointsmemo.com/livewire/"
        "hannity-announces-fox-hired-sebastian-gorka-national-security-strategist"
    )
    [post] = items("rss-with-relative-html-urls-no-base.xml")
    assert post.url == "https://example.com/feed/posts/post-1"
    assert post.image == "https://example.com/images/post-1.png"


def test_hand_written_relative_link_against_atom_self() -> None:
    content = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>A</title>'
        b'<link rel="self" href="https://blog.example.net/feed.atom"/>'
        b'<entry><title>One</title><link href="/2024/one"/><updated>2024-01-02T00:00:00Z</updated>'
        b"</entry></feed>"
    )
    assert parse(content)[0].url == "https://blog.example.net/2024/one"


# --- pictures ----------------------------------------------------------------------------


def test_first_real_picture_of_an_item() -> None:
    typepad = [i for i in items("TypePadNews.xml") if i.title == "Spotlight: Friday Favorites!"]
    assert (
        typepad[0].image
        == "http://everything.typepad.com/.a/6a00d83451c82369e2017c37087e65970b-600wi"
    )
    katie = items("KatieFloyd.rss")[0]  # a feedpress 1x1 counter beside it
    assert katie.image is not None and katie.image.startswith("http://static1.squarespace.com/")
    monkey = items("monkeydom.rss")[0]  # root-relative: the blog's, not the linked github page's
    assert monkey.image == "https://coding.monkeydom.de/assets/posts/PortMapAppIcon-512.png"


def test_share_buttons_counters_and_deep_figures_are_not_the_picture() -> None:
    assert items("guid-dupes.xml")[0].image is None  # feedflare share buttons
    assert items("489.rss")[0].image is None  # Medium's 1x1 counter
    assert items("russcox.atom")[0].image is None  # figures ten paragraphs down


# --- teasers and the feed itself ----------------------------------------------------------


def test_read_more_and_comment_links_are_not_the_teaser() -> None:
    [post] = items("rss-with-relative-html-urls-no-base.xml")
    assert post.teaser == ""  # only "Read" and "Comments" links
    marley = items("EMarley.rss")[0]
    assert "Continue reading" not in marley.teaser


def test_the_feed_says_its_own_name_and_site() -> None:
    _, _, about = read_feed(Document("x", fixture("feeds/rubenerd.rss").read_bytes()))
    assert about == 'feed "Rubenerd" from https://rubenerd.com/'
    collected = read_source(str(fixture("feeds/tpm.atom")), ReadOptions(limit=1))
    assert collected.notes[0] == 'feed "All TPM News" from http://talkingpointsmemo.com'
