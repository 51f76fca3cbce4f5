"""Issue 14 failure classes: encodings, titles and bylines, on real pages and small cases."""

from __future__ import annotations

import json

from newsletter.collect.readers.decode import decode
from newsletter.collect.readers.html import page_metadata
from tests._paths import fixture


def page_bytes(name: str) -> bytes:
    return fixture(f"pages/{name}").read_bytes()


def with_stray_byte(content: bytes) -> bytes:
    """The page with one invalid byte in its body (a pasted Latin-1 character)."""
    at = content.index(b"<body")
    return content[:at] + b"<p>caf\xe9</p>" + content[at:]


def html(head: str, body: str = "") -> str:
    return f"<html><head>{head}</head><body>{body}</body></html>"


# --- encoding -------------------------------------------------------------------------------


def test_declared_utf8_with_one_invalid_byte_is_still_read_as_utf8() -> None:
    content = with_stray_byte(page_bytes("gelbe-liste.de-chininum.html"))  # <meta charset=utf-8>
    text = decode(content)
    assert "\ufffd" in text  # the stray byte, replaced
    assert "Ã" not in text and "√" not in text
    assert page_metadata(text).title == "Chininum salicylicum D4 DHU Tabletten"


def test_utf8_in_the_http_header_with_one_invalid_byte_is_read_as_utf8() -> None:
    content = with_stray_byte(page_bytes("katholisch.at-alleinerziehende.html"))  # no <meta>
    meta = page_metadata(decode(content, declared="utf-8"))
    assert meta.title == "Alleinerziehende: Kinderbetreuung flächendeckend ausbauen"


def test_hand_written_page_declaring_utf8_with_a_stray_byte() -> None:
    body = "Polska broni się przed serią ataków; zażółć gęślą jaźń. ".encode() * 3
    content = b'<html><head><meta charset="utf-8"></head><body>' + body + b"\x96</body></html>"
    text = decode(content)
    assert "ataków" in text and "atak√≥w" not in text


def test_a_real_latin1_page_declaring_utf8_is_not_forced_into_utf8() -> None:
    # Every accented byte invalid: the bytes disagree with the declaration.
    content = '<meta charset="utf-8"><p>Café, Müller, Señor, Ærø, Ça va, déjà</p>'.encode("cp1252")
    assert "Müller" in decode(content)


# --- titles ---------------------------------------------------------------------------------


def test_logo_h1_loses_to_the_heading_inside_the_article() -> None:
    page = html(
        '<link rel="canonical" href="https://example.kr/a/1">',
        "<header><h1>엔터 미디어</h1></header>"
        "<article><h1>드라마 속 진짜 주인공은 누구인가</h1><p>본문입니다.</p></article>",
    )
    assert page_metadata(page).title == "드라마 속 진짜 주인공은 누구인가"


def test_json_ld_headline_wins_over_a_logo_h1() -> None:
    ld = json.dumps({"@type": "NewsArticle", "headline": "The real headline"})
    page = html(
        f'<script type="application/ld+json">{ld}</script>',
        "<h1>Site Logo</h1><p>Body text of the story goes here.</p>",
    )
    assert page_metadata(page, "https://example.com/x").title == "The real headline"


def test_site_name_suffix_is_stripped_when_it_matches_og_site_name() -> None:
    # og:title "Chininum salicylicum D4 DHU Tabletten | Gelbe Liste",
    # og:site_name "Gelbe Liste Online"
    meta = page_metadata(decode(page_bytes("gelbe-liste.de-chininum.html")))
    assert meta.title == "Chininum salicylicum D4 DHU Tabletten"
    page = html(
        '<meta property="og:title" content="Budget talks stall - The Daily">'
        '<meta property="og:site_name" content="The Daily">'
    )
    assert page_metadata(page).title == "Budget talks stall"
    page = html('<meta property="og:title" content="Left - Right">')
    assert page_metadata(page).title == "Left - Right"  # no site name: the dash stays


# --- authors --------------------------------------------------------------------------------


def test_json_ld_author_list_of_people() -> None:
    ld = json.dumps(
        {
            "@type": "NewsArticle",
            "headline": "H",
            "author": [
                {"@type": "Person", "name": "Ann Lee"},
                {"@type": "Person", "name": "Bo Li"},
            ],
            "publisher": {"@type": "Organization", "name": "Example News"},
        }
    )
    page = html(f'<script type="application/ld+json">{ld}</script>')
    assert page_metadata(page, "https://example.com/x").author == "Ann Lee, Bo Li"


def test_organisation_author_only_when_no_person_is_named() -> None:
    ld = {
        "@type": "NewsArticle",
        "headline": "H",
        "author": {"@type": "Organization", "name": "EFE"},
    }
    page = html(f'<script type="application/ld+json">{json.dumps(ld)}</script>')
    assert page_metadata(page, "https://example.com/x").author == "EFE"
    ld["author"] = [ld["author"], {"@type": "Person", "name": "Ana Ruiz"}]
    page = html(f'<script type="application/ld+json">{json.dumps(ld)}</script>')
    assert page_metadata(page, "https://example.com/x").author == "Ana Ruiz"


def test_the_site_itself_as_organisation_author_is_no_byline() -> None:
    assert page_metadata(decode(page_bytes("24horas.cl-segundo.html"))).author is None


def test_byline_markup_rel_author_microdata_and_vcard() -> None:
    for body in (
        '<p class="meta">Posted by <a rel="author" href="/u/jf">Jeff Foust</a></p>',
        '<span itemprop="author" itemscope><span itemprop="name">Jeff Foust</span></span>',
        '<span class="author vcard"><a class="url fn n" href="/u/jf">Jeff Foust</a></span>',
        '<div class="byline">By Jeff Foust</div>',
    ):
        page = html('<meta property="og:title" content="Launch">', body)
        assert page_metadata(page, "https://example.com/x").author == "Jeff Foust", body


def test_byline_glued_to_a_date_and_by_prefix() -> None:
    for byline in ("Jeff Foust Monday, November 3, 2014", "By Jeff Foust", "by Jeff Foust 12:30"):
        page = html(f'<meta name="author" content="{byline}">')
        assert page_metadata(page, "https://example.com/x").author == "Jeff Foust", byline


def test_real_pages_bylines_from_parsely_metadata() -> None:
    # Both write the byline only in parsely-page (and a byline block with photographers).
    assert page_metadata(decode(page_bytes("architecturaldigest.com1.html"))).author == "Mayer Rus"
    assert page_metadata(decode(page_bytes("dailycaller.com1.html"))).author == "Ann Coulter"


def test_a_name_that_is_also_a_month_is_kept() -> None:
    # microdata author "April P. Bernard"
    assert page_metadata(decode(page_bytes("bostonherald.com1.html"))).author == "April P. Bernard"
