"""Feeds through feedparser: real RSS 2.0, RSS 1.0 and Atom files; broken and empty feeds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.collect.readers.base import ReadOptions
from newsletter.collect.readers.registry import read_source
from newsletter.errors import SourceError
from tests._paths import fixture


def articles(name: str, **options: object):  # type: ignore[no-untyped-def]
    collected = read_source(str(fixture(f"feeds/{name}")), ReadOptions(**options))  # type: ignore[arg-type]
    return [found.article for found in collected.found]


def test_rss2_sample_newest_first_with_author_name_not_email() -> None:
    items = articles("rss2sample.xml")
    assert [a.title for a in items][:1] == ["Star City"]
    star_city = items[0]
    assert star_city.url == "http://liftoff.msfc.nasa.gov/news/2003/news-starcity.asp"
    assert star_city.author == "Writer"  # <author>writer@example.com (Writer)</author>
    assert star_city.date == dt.date(2003, 6, 3)
    assert star_city.teaser.endswith("at Russia's Star City.")  # entity-escaped <a> became text
    # An item with no title gets its first words; its link comes from the permalink guid.
    untitled = items[1]
    assert untitled.url == "http://liftoff.msfc.nasa.gov/2003/05/30.html#item572"
    assert untitled.title.startswith("Sky watchers in Europe, Asia, and parts of Alaska")


def test_atom_entries_inherit_the_feed_author() -> None:
    [first, second] = articles("russcox.atom", limit=2)
    assert first.title == "Transparent Logs for Skeptical Clients"
    assert first.url == "http://research.swtch.com/tlog"
    assert first.author == "Russ Cox"
    assert first.date == dt.date(2019, 3, 1)
    assert first.teaser == "How an untrusted server can publish a verifiably append-only log."
    assert second.title == "An Encoded Tree Traversal"


def test_atom_with_cdata_content_and_no_summary() -> None:
    [first] = articles("DaringFireball.rss", limit=1)
    assert first.title == "Apple Product Event: Monday March 21"
    assert first.url.startswith("http://recode.net/2016/02/27/remark-your-calendars")
    assert first.teaser.startswith(
        "Kara Swisher, writing at Recode, broke the news: Attention Apple nerds"
    )
    assert "<" not in first.teaser


def test_rss1_rdf_with_dublin_core_dates() -> None:
    [first] = articles("bio.rdf", limit=1)
    assert first.url == "http://biorxiv.org/cgi/content/short/743294v1?rss=1"
    assert first.date == dt.date(2019, 8, 27)
    assert first.author is not None and first.author.startswith("Kaur, M., Shukla, A.")


def test_image_from_non_standard_tags_and_from_html() -> None:
    [mint] = articles("livemint.xml", limit=1)
    assert mint.author == "Elizabeth Roche"
    assert mint.image is not None
    assert mint.image.src == (
        "https://images.livemint.com/img/2019/05/29/600x338/"
        "PTI5_27_2019_000025B_1559105066780_1559105081104.jpg"  # <bigimage>, the largest
    )
    [aktuality] = articles("aktuality.rss", limit=1)
    assert aktuality.image is not None
    assert "&amp;" not in aktuality.image.src
    assert aktuality.image.src.startswith(
        "https://t.aimg.sk/magaziny/vUw5YHzvQKDCkNw6PtXtAg.320.jpg?t="
    )


def test_staff_bylines_are_not_authors() -> None:
    second = articles("livemint.xml", limit=2)[1]
    assert second.title == "US takes India off watchlist for currency practices"
    assert second.author is None  # <author>Staff Writer</author>


def test_relative_links_need_the_feed_address() -> None:
    path = fixture("feeds/rss-with-relative-urls.xml")
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert caught.value.line() == (
        f"{path}: item links are relative (/en/games/neverwinter/news/detail/"
        "10743874-neverwinter-%26-jingle-jam-humble-bundle%21) and the feed does not say its own "
        "address — give the feed's address with --url"
    )
    items = articles(
        "rss-with-relative-urls.xml", url="http://www.arcgames.com/en/games/neverwinter/news/rss"
    )
    assert items[0].url == (
        "http://www.arcgames.com/en/games/neverwinter/news/detail/"
        "10743874-neverwinter-%26-jingle-jam-humble-bundle%21"
    )
    assert items[0].date == dt.date(2017, 12, 7)  # "Thu, 07 Dec 17": a two-digit year
    assert items[0].teaser.startswith("Greetings Adventurers! Neverwinter is proud to partner")


def test_limit_and_since() -> None:
    assert len(articles("aktuality.rss")) == 10  # the default
    assert len(articles("aktuality.rss", limit=3)) == 3
    recent = articles("russcox.atom", since=dt.date(2019, 1, 1))
    assert [a.date for a in recent] == sorted((a.date for a in recent), reverse=True)
    assert all(a.date is not None and a.date >= dt.date(2019, 1, 1) for a in recent)
    assert len(recent) == 3


def test_malformed_feed_keeps_the_real_items_and_says_what_was_dropped() -> None:
    collected = read_source(str(fixture("feeds/illegally-nested.xml")), ReadOptions(limit=20))
    assert len(collected.found) == 10
    assert collected.notes == [
        'feed "PCMag.com: the Official John C. Dvorak RSS Feed" from http://www.pcmag.com',
        "10 empty item(s) skipped (the feed is malformed)",
    ]
    assert collected.found[0].article.title == "My Professional Armchair Analysis of CES"
    assert all(a.article.image is None for a in collected.found)  # FeedBurner pixels are not images


def test_zero_item_feed(tmp_path: Path) -> None:
    path = tmp_path / "empty.rss"
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Quiet</title>'
        "<link>https://example.org/</link><description>Nothing yet</description></channel></rss>"
    )
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert caught.value.line() == f"{path}: the feed has no items — try again when it has news"


def test_broken_feed_file_is_not_a_feed(tmp_path: Path) -> None:
    path = tmp_path / "broken.xml"
    path.write_text('<?xml version="1.0"?><rss version="2.0"><channel><item><title>Half')
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert (
        "the feed has no items" in caught.value.line()
        or "not an RSS or Atom feed" in caught.value.line()
    )


def test_media_rss_and_enclosure_images(tmp_path: Path) -> None:
    path = tmp_path / "media.xml"
    path.write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/">'
        "<channel><title>M</title><link>https://example.org/</link>"
        "<item><title>Thumb</title><link>https://example.org/a</link>"
        '<media:thumbnail url="https://example.org/a.jpg"/></item>'
        "<item><title>Enclosed</title><link>https://example.org/b</link>"
        '<enclosure url="https://example.org/b.png" type="image/png" length="1"/></item>'
        "</channel></rss>"
    )
    thumb, enclosed = (found.article for found in read_source(str(path)).found)
    assert thumb.image is not None and thumb.image.src == "https://example.org/a.jpg"
    assert enclosed.image is not None and enclosed.image.src == "https://example.org/b.png"
