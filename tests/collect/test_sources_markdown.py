"""Markdown files with YAML front matter."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.collect.readers.base import ReadOptions
from newsletter.collect.readers.registry import read_source
from newsletter.errors import SourceError


def write(tmp_path: Path, text: str, name: str = "note.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_front_matter_fields_and_body_as_teaser(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "---\n"
        "title: Élections à Tirana\n"
        "url: https://example.org/tirana\n"
        "image: {src: https://example.org/t.jpg, alt: Ballot boxes}\n"
        "author: [Ana Hoxha, Ben Lee]\n"
        "date: 2026-11-30\n"
        "section: Latest\n"
        "---\n"
        "The *first* paragraph, with a [link](https://example.org) and <script>x()</script>.\n\n"
        "The second paragraph.\n",
    )
    [found] = read_source(str(path)).found
    article = found.article
    assert found.section == "Latest"
    assert article.title == "Élections à Tirana"
    assert article.url == "https://example.org/tirana"
    assert article.teaser == "The first paragraph, with a link and ."
    assert article.image is not None and article.image.alt == "Ballot boxes"
    assert article.author == "Ana Hoxha, Ben Lee"
    assert article.date == dt.date(2026, 11, 30)


def test_teaser_from_front_matter_wins_and_image_string_gets_title_as_alt(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "---\ntitle: Short\nurl: https://example.org/s\nteaser: Given teaser\n"
        "image: https://example.org/s.jpg\n---\nBody text.\n",
    )
    [found] = read_source(str(path)).found
    assert found.article.teaser == "Given teaser"
    assert found.article.image is not None and found.article.image.alt == "Short"


def test_bad_front_matter_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "---\ntitle: Fine\nurl: [unclosed\n---\nBody\n")
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert caught.value.line().startswith(f"{path}:")
    assert "front matter is not valid YAML" in caught.value.line()
    assert caught.value.line().endswith("— check the quoting and indentation between the --- lines")


def test_missing_title_and_missing_url(tmp_path: Path) -> None:
    untitled = write(tmp_path, "---\nurl: https://example.org/x\n---\nBody\n", "a.md")
    with pytest.raises(SourceError) as caught:
        read_source(str(untitled))
    assert caught.value.line() == (
        f"{untitled}: the front matter has no title "
        "— add a line `title: ...` between the --- lines at the top"
    )
    no_url = write(tmp_path, "---\ntitle: X\n---\nBody\n", "b.md")
    with pytest.raises(SourceError) as caught:
        read_source(str(no_url))
    assert caught.value.line() == (
        f"{no_url}: the front matter has no url — add a line `url: https://...` at the top, "
        "or give it with --url"
    )
    [found] = read_source(str(no_url), ReadOptions(url="https://example.org/x")).found
    assert found.article.url == "https://example.org/x"


def test_no_front_matter(tmp_path: Path) -> None:
    path = write(tmp_path, "# Just a heading\n\nText.\n")
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert caught.value.line() == (
        f"{path}: no front matter (the file must start with a line `---`) "
        "— put title: and url: between two `---` lines at the top"
    )


def test_invalid_url_in_front_matter_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "---\ntitle: X\nurl: not-a-url\n---\n")
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert caught.value.line() == (
        f"{path}: url: 'not-a-url' is not an absolute http(s) URL "
        "— the source is incomplete; check it"
    )
