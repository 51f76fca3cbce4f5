"""Plain-text page dumps: headline, paragraphs and the site's teaser lists, without noise."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.collect.readers.registry import read_source
from newsletter.errors import SourceError
from newsletter.issue.placeholders import placeholder_url
from tests._paths import page_dump


def test_page_dump_gives_lead_latest_and_dont_miss() -> None:
    found = read_source(str(page_dump())).found
    sections = [(f.section, f.layout) for f in found]
    assert sections[0] == ("Top story", "lead")
    assert sections[1:4] == [("Latest", "list")] * 3
    assert sections[4:] == [("Don't miss", "grid")] * 7
    lead = found[0].article
    assert (
        lead.title
        == "Iranians hold rallies to protest police raid on opposition’s Albania-based HQ"
    )
    assert lead.teaser.startswith("Protests were held outside Albanian embassies")
    assert lead.url == placeholder_url(lead.title)


def test_each_title_once_with_the_longest_teaser_and_no_noise() -> None:
    found = read_source(str(page_dump())).found
    titles = [f.article.title for f in found]
    assert len(titles) == len(set(titles)) == 11
    snapback = next(f.article for f in found if f.article.title.startswith("After the “snapback,”"))
    assert snapback.teaser.startswith(
        "Less than two weeks after the reimposition of United Nations"
    )
    for item in found:
        assert "Advertisement" not in item.article.title + item.article.teaser
        assert "Subscribe" not in item.article.title


def test_a_simple_text_note_is_one_lead_article(tmp_path: Path) -> None:
    path = tmp_path / "note.txt"
    path.write_text("A headline\n\n- Advertisement -\n\nThe first paragraph.\n\nMore.\n")
    [found] = read_source(str(path)).found
    assert found.article.title == "A headline"
    assert found.article.teaser == "The first paragraph."


def test_empty_and_binary_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(SourceError) as caught:
        read_source(str(empty))
    assert caught.value.line().startswith(f"{empty}: the source is empty")
    binary = tmp_path / "photo.txt"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    with pytest.raises(SourceError) as caught:
        read_source(str(binary))
    assert caught.value.line() == (
        f"{binary}: a JPEG image, not a page, feed or text — give an article URL, an .html page, "
        "a feed, a Markdown (.md) or a text (.txt) file"
    )


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as caught:
        read_source(str(tmp_path / "nope.txt"))
    assert caught.value.line().startswith(
        f"{tmp_path / 'nope.txt'}: file not found — check the path"
    )
    with pytest.raises(SourceError) as caught:
        read_source(str(tmp_path))
    assert caught.value.line().startswith(f"{tmp_path}: is a directory")
