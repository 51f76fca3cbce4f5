"""Article pages: metadata from real pages (values read off the raw files), encodings, safety."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.collect.readers.base import ReadOptions
from newsletter.collect.readers.decode import decode
from newsletter.collect.readers.html import page_metadata
from newsletter.collect.readers.registry import read_source
from newsletter.errors import SourceError
from tests._paths import fixture


def meta_of(name: str, url: str | None = None):  # type: ignore[no-untyped-def]
    return page_metadata(decode(fixture(f"pages/{name}").read_bytes()), url)


def test_cnn_byline_keeps_the_people_and_drops_the_publication() -> None:
    meta = meta_of("cnn_article.html")
    assert meta.title == "After storm, forecasters see smooth sailing for Thanksgiving"
    assert meta.author == "Dana A. Ford, James S.A. Corey, Chien-Ming Wang, Tom Watkins"
    assert meta.date == dt.date(2013, 11, 27)
    assert meta.url == "http://www.cnn.com/2013/11/27/travel/weather-thanksgiving/index.html"
    assert (
        meta.image
        == "http://i2.cdn.turner.com/cnn/dam/assets/131129200805-01-weather-1128-story-top.jpg"
    )
    assert meta.teaser == (
        "A strong storm struck much of the eastern United States on Wednesday, complicating "
        "holiday plans for many of the 43 million Americans expected to travel."
    )


def test_syndicated_page_links_to_the_canonical_original() -> None:
    meta = meta_of("businessinsider.com1.html")
    assert meta.url == "http://theaviationist.com/2014/12/29/su-24-fuerza-aerea-argentina/"
    assert meta.author == "David Cenciotti"  # not "David Cenciotti, The Aviationist"
    assert meta.title == "Argentina's Huge Fighter Jet Purchase Could Raise Tensions With Britain"
    assert meta.date == dt.date(2014, 12, 29)


def test_first_og_image_wins_and_a_bogus_canonical_is_ignored() -> None:
    meta = meta_of("cleveland.com1.html")
    # <link rel="canonical" href="8003098"> is a CMS bug; og:url is the address.
    assert (
        meta.url
        == "http://www.cleveland.com/food/index.ssf/2014/12/let_me_google_that_for_you_201.html"
    )
    assert meta.image == (
        "http://imgick.oregonlive.com/home/olive-media/width620/img/today/photo/16470669-standard.jpg"
    )
    assert meta.author == "National Desk"
    assert meta.date == dt.date(2014, 12, 27)


def test_page_without_sharing_metadata_falls_back_to_the_article_itself() -> None:
    meta = meta_of("chinese_article.html")
    assert (
        meta.title == "港特首梁振英就住宅违建事件道歉"
    )  # <title> carries " - BBC中文网 - 两岸三地"
    assert (
        meta.url
        == "http://www.bbc.co.uk/zhongwen/simp/chinese_news/2012/12/121210_hongkong_politics.shtml"
    )
    assert meta.image == (
        "http://wscdn.bbc.co.uk/worldservice/assets/images/2012/12/06/121206102108_cn_cy_leung_304x171_ap.jpg"
    )
    assert meta.image_alt == "香港行政长官梁振英（6/12/2012）"
    assert meta.date == dt.date(2012, 12, 10)
    assert meta.author is None


def test_microformats_give_title_and_byline_of_an_old_ap_page() -> None:
    meta = meta_of("ap_meta_refresh.html")
    assert meta.title == "Father of Orlando gunman known for rambling political videos"
    assert meta.author == "LYNNE O'DONNELL"
    assert meta.date == dt.date(2016, 6, 13)
    assert meta.teaser is not None
    assert meta.teaser.startswith(
        "KABUL, Afghanistan (AP) -- The father of the Orlando nightclub gunman"
    )
    assert meta.url is None  # the page does not say where it lives


def test_relative_images_resolve_against_the_given_address() -> None:
    meta = meta_of("ap_meta_refresh.html", "http://hosted.ap.org/dynamic/stories/A/STORY")
    assert meta.url == "http://hosted.ap.org/dynamic/stories/A/STORY"
    assert (
        meta.image == "http://hosted.ap.org/photos/8/804a421f38c14a7e8900880d5cb13961_0-small.jpg"
    )


def test_organisation_as_author_is_not_a_byline() -> None:
    assert meta_of("100noticias.com-millones.html").author is None  # meta author "100% Noticias"
    assert meta_of("24horas.cl-segundo.html").author is None  # a facebook URL and the site itself
    assert meta_of("1hundetagebuch.wordpress.com.langer.html").author == "DT"


def test_scheme_relative_canonical_and_non_latin_text() -> None:
    meta = meta_of("24horas.cl-segundo.html")
    assert meta.url == (
        "https://www.24horas.cl/politica/presidente-boric-inicia-gira-por-magallanes-este-miercoles-5287894"
    )
    assert meta.title == (
        "Segundo viaje oficial fuera de Santiago: "
        "Presidente Boric inicia gira por Magallanes este miércoles"
    )
    arabic = meta_of("arabic_article.html")
    assert arabic.title == "معارضون يسيطرون على مخازن للصواريخ بريف دمشق"


PAGE = """<!doctype html><html><head>{head}<title>Caf\u00e9 news \u2013 Example Times</title>
<meta property="og:site_name" content="Example Times">
<link rel="canonical" href="https://example.org/cafe?utm_source=x">
</head><body><p>Le caf\u00e9 \u201cna\u00efve\u201d co\u00fbte 3 \u20ac,
dit l'\u00e9diteur, et c'est tout.</p></body></html>"""
TEXT = "Le café “naïve” coûte 3 €, dit l'éditeur, et c'est tout."


@pytest.mark.parametrize(
    ("head", "encoding"),
    [
        ('<meta charset="utf-8">', "utf-8"),
        ('<meta charset="windows-1252">', "cp1252"),
        ('<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">', "cp1252"),
        ('<meta charset="iso-8859-1">', "utf-8"),  # declares Latin-1, written in UTF-8
        ('<meta charset="utf-8">', "cp1252"),  # declares UTF-8, written in Windows-1252
        ("", "cp1252"),  # declares nothing
    ],
)
def test_encodings_come_out_right(tmp_path: Path, head: str, encoding: str) -> None:
    path = tmp_path / "page.html"
    path.write_bytes(PAGE.format(head=head).encode(encoding))
    [found] = read_source(str(path)).found
    assert found.article.title == "Café news"
    assert found.article.teaser == TEXT


def test_http_charset_header_is_honoured_for_legacy_encodings() -> None:
    assert decode("Grüße".encode("cp1252"), declared="windows-1252") == "Grüße"
    assert decode("Привет мир".encode("koi8-r"), declared="koi8-r") == "Привет мир"


def test_saved_page_needs_an_address_when_it_declares_none(tmp_path: Path) -> None:
    path = tmp_path / "saved.html"
    path.write_text("<html><head><title>Saved</title></head><body><p>Text</p></body></html>")
    with pytest.raises(SourceError) as caught:
        read_source(str(path))
    assert caught.value.line() == (
        f"{path}: the page does not say its address (no canonical link or og:url) "
        "— give it with --url ORIGINAL"
    )
    [found] = read_source(str(path), ReadOptions(url="https://example.org/saved")).found
    assert found.article.url == "https://example.org/saved"


def test_relative_og_image_resolves_against_url_option(tmp_path: Path) -> None:
    path = tmp_path / "saved.html"
    path.write_text(
        '<html><head><meta property="og:title" content="Story">'
        '<meta property="og:image" content="../img/lead.jpg"></head><body></body></html>'
    )
    [found] = read_source(str(path), ReadOptions(url="https://example.org/news/a/story")).found
    assert found.article.image is not None
    assert found.article.image.src == "https://example.org/news/img/lead.jpg"
    assert found.article.image.alt == "Story"


def test_nothing_executable_survives_into_the_teaser(tmp_path: Path) -> None:
    path = tmp_path / "evil.html"
    path.write_text(
        '<html><head><meta property="og:title" content="Hi &lt;script&gt;alert(1)&lt;/script&gt;">'
        '<meta property="og:description" content="&lt;img src=x onerror=alert(1)&gt;Safe '
        '&lt;script&gt;steal()&lt;/script&gt;text &lt;style&gt;body{}&lt;/style&gt;">'
        '<link rel="canonical" href="https://example.org/x"></head><body></body></html>'
    )
    [found] = read_source(str(path)).found
    assert found.article.title == "Hi"
    assert found.article.teaser == "Safe text"


def test_long_descriptions_are_cut_at_a_word_boundary(tmp_path: Path) -> None:
    path = tmp_path / "long.html"
    words = " ".join(f"word{n}" for n in range(200))
    path.write_text(
        '<html><head><meta property="og:title" content="Long">'
        f'<meta name="description" content="{words}">'
        '<link rel="canonical" href="https://example.org/long"></head></html>'
    )
    teaser = read_source(str(path)).found[0].article.teaser
    assert len(teaser) <= 500
    assert teaser.endswith("…")
    assert words.startswith(teaser.removesuffix("…"))
    assert teaser.removesuffix("…").split(" ")[-1] in words.split(" ")
