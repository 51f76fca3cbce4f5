"""Issue 14 on pages: titles, bylines, images, dates and teasers from sites never tuned for,
each class on real pages from ../shared and on small hand-written ones."""

from __future__ import annotations

import datetime as dt
import json

from newsletter.collect.readers.dates import parse_date, url_date
from newsletter.collect.readers.decode import decode
from newsletter.collect.readers.html import PageMetadata, page_metadata
from newsletter.collect.readers.teasers import clean_teaser, is_site_description
from tests._paths import fixture

URL = "https://example.com/2024/05/06/story"


def real(name: str) -> PageMetadata:
    return page_metadata(decode(fixture(f"pages/{name}").read_bytes()))


def html(head: str, body: str = "", lang: str = "en") -> str:
    return f'<html lang="{lang}"><head>{head}</head><body>{body}</body></html>'


def ld(**fields: object) -> str:
    node = {"@context": "https://schema.org", "@type": "NewsArticle", **fields}
    return f'<script type="application/ld+json">{json.dumps(node)}</script>'


# --- titles: the visible headline that matches what the page declares ----------------------


def test_a_logo_h1_and_a_category_h1_lose_to_the_headline() -> None:
    assert real("dailycaller.com1.html").title == (
        "Happy Kwanzaa! The Holiday Brought To You By The FBI"
    )  # first <h1> is "DailyCaller"
    assert real("diario1.com-legislativa.html").title == (
        "Asamblea Legislativa aprueba ley especial para construcción de cárceles"
    )  # first <h1> is the section "POLÍTICA"


def test_the_visible_headline_wins_over_a_longer_social_title() -> None:
    assert real("flawlessfood.co.uk.olive.html").title == "Olive & Herb Focaccia Bread"
    assert real("der-farang.com-Grab-Bote.html").title == (
        "Frei erfunden: Grab-Bote fliegt nach Singapur"
    )  # og:title adds ", Thailand"
    assert real("elenacional.com-carta.html").title.startswith("Carta abierta, un nuevo espacio")


def test_site_names_in_any_form_are_cut_from_titles() -> None:
    assert real("backstage.com1.html").title == "Actors - 'Coney Island' Scripted TV & Video"
    assert real("ejwue.de.lieferketten.html").title == "Faire Lieferketten"
    assert real("d43f330cbaf74e92b9aec85e937cb904.html").title == (
        "kein App Store mehr über Mobile Daten mit iOS 13 ?"
    )  # "<h2> | iPhone | Forum | MacTechNews.de"


def test_hand_written_logo_h1_and_og_title() -> None:
    page = html(
        '<meta property="og:title" content="Storm closes the bridge">',
        "<header><h1>The Daily Planet</h1></header><main><h1>Storm closes the bridge</h1></main>",
    )
    assert page_metadata(page, URL).title == "Storm closes the bridge"
    page = html('<meta property="og:title" content="Storm closes the bridge">', "<h1>Logo</h1>")
    assert page_metadata(page, URL).title == "Storm closes the bridge"


# --- authors --------------------------------------------------------------------------------


def test_bylines_from_microdata_vcard_contributor_and_json_ld_kinds() -> None:
    assert real("journal.3960.org.firefox.html").author == "Frank Boës"  # itemprop=author
    assert real("elenacional.com-carta.html").author == "Williams Perdomo"  # vcard + @handle
    assert real("dalloz-actualite.fr.raoult.html").author == "Matthieu Hy"  # "Par ..." contributor
    assert real("homify.de-Tischdecke.html").author == "robert.stitz"  # JSON-LD HowTo author
    assert real("motor1.de-erwischt.html").author == "Adrian Padeanu"  # not the translator


def test_organisation_only_where_no_person_is_named() -> None:
    assert real("diario1.com-legislativa.html").author == "EFE"
    assert real("gelbe-liste.de-chininum.html").author == "Redaktion Gelbe Liste Pharmindex"
    assert real("katholisch.at-alleinerziehende.html").author is None  # the site itself


def test_byline_keeps_people_and_drops_employers_and_credits() -> None:
    assert real("al.com1.html").author == "Ari Wasserman"  # ", Northeast Ohio Media Group"
    assert real("architecturaldigest.com1.html").author == "Mayer Rus"  # "Photography by ..."
    assert real("avclub.com1.html").author == (
        "Mike D'Angelo, A.A. Dowd, Jesse Hassenger, Nick Schager, Ignatiy Vishnevetsky"
    )  # JSON-LD names only the first of the byline's five


def test_hand_written_bylines() -> None:
    page = html(
        '<meta property="og:title" content="T">',
        '<div class="byline">Text by Ann Lee | Photography by Bo Li</div>',
    )
    assert page_metadata(page, URL).author == "Ann Lee"
    page = html('<meta name="author" content="Jeff Foust, Space News Group">')
    assert page_metadata(page, URL).author == "Jeff Foust"


def test_byline_in_the_first_line_of_the_text() -> None:
    page = html(
        '<meta property="og:title" content="لقاء مع الكاتب">',
        "<h1>لقاء مع الكاتب</h1><p>حوار: سارة أحمد</p><p>" + "نص المقابلة الطويل. " * 5 + "</p>",
        lang="ar",
    )
    assert page_metadata(page, URL).author == "سارة أحمد"
    page = html(
        '<meta property="og:title" content="Bridge">',
        "<h1>Bridge</h1><p>By the way, the bridge is closed for the whole winter season.</p>",
    )
    assert page_metadata(page, URL).author is None


# --- images ---------------------------------------------------------------------------------


def test_site_logos_and_generic_share_pictures_are_not_the_image() -> None:
    assert real("backstage.com1.html").image is None  # og:image is the site's icon
    assert real("gelbe-liste.de-chininum.html").image == (
        "https://www.gelbe-liste.de/produkte/packshot_Chininum-salicylicum-D4-DHU-Tabletten.png/267253"
    )  # og:image and JSON-LD image are site-wide; the pack shot is the page's own
    assert real("d43f330cbaf74e92b9aec85e937cb904.html").image is None  # favicon, avatars


def test_the_story_photo_when_nothing_is_declared() -> None:
    assert real("bostonherald.com1.html").image.startswith(
        "http://www.bostonherald.com/sites/default/files/styles/full/public/media/ap/"
    )
    assert real("silvias.net.wahlzensur.html").image == (
        "http://www.silvias.net/blog/wp-content/uploads/2018/10/uni-848x350.jpeg"
    )
    assert real("247wallst.com1.html").image == (
        "https://247wallst.files.wordpress.com/2012/10/stylized_stock_ticker.jpeg?w=400"
    )  # not the 32x32 share icons before it


def test_hand_written_share_buttons_and_icons_are_skipped() -> None:
    page = html(
        '<meta property="og:title" content="Bridge">',
        "<h1>Bridge</h1>"
        '<div class="addthis_toolbox"><img src="https://s7.addthis.com/button.png"></div>'
        '<img src="/img/add-to-facebook.png" alt="Add to Facebook">'
        '<img src="/img/tiny.jpg" width="16" height="16">'
        '<p>Text of the story that is long enough to count.</p><img src="/img/bridge.jpg">',
    )
    assert page_metadata(page, URL).image == "https://example.com/img/bridge.jpg"


# --- dates ----------------------------------------------------------------------------------


def test_declared_and_visible_dates_by_language() -> None:
    assert real("erneuerbareenergien.de.seeboden.html").date == dt.date(2022, 12, 10)
    assert real("100noticias.com-millones.html").date == dt.date(2022, 4, 26)  # "26, Abril, 2022"
    assert real("arabic_article.html").date == dt.date(2013, 8, 28)  # "28 آب/اغسطس 2013"
    assert real("dalloz-actualite.fr.raoult.html").date == dt.date(2020, 5, 7)
    assert real("diario1.com-legislativa.html").date == dt.date(2022, 4, 19)  # not the sidebar's
    assert real("ejwue.de.lieferketten.html").date == dt.date(2020, 2, 12)  # meta name=date


def test_no_date_is_guessed_from_image_addresses() -> None:
    assert real("bhg.com1.html").date is None
    assert real("regiolanda.de.filmbuero.html").date is None


def test_numeric_dates_follow_the_page_language() -> None:
    assert parse_date("2020/1/10 14:33", "zh") == dt.date(2020, 1, 10)
    assert parse_date("10.12.2022, 07:00:03", "de") == dt.date(2022, 12, 10)
    assert parse_date("12/04/2020", "en-GB") == dt.date(2020, 4, 12)
    assert parse_date("12/04/2020", "en-US") == dt.date(2020, 12, 4)
    assert parse_date("25/12/2020", "en-US") == dt.date(2020, 12, 25)  # only one order fits
    assert parse_date("28.09.19 12:44", "de") == dt.date(2019, 9, 28)
    assert parse_date("le 07 Mai 2020", "fr") == dt.date(2020, 5, 7)
    assert url_date("https://x.com/2014/12/29/story/") == dt.date(2014, 12, 29)


def test_published_time_and_dc_date_beat_the_text() -> None:
    head = (
        '<meta property="article:published_time" content="2021-03-04T23:30:00-05:00">'
        '<meta property="og:title" content="T">'
    )
    page = html(head, "<h1>T</h1><p>Updated 2021-03-09</p>")
    assert page_metadata(page, "https://x.com/2021/03/04/t").date == dt.date(2021, 3, 4)
    page = html('<meta name="DC.date" content="2019-07-01">')
    assert page_metadata(page, URL).date == dt.date(2019, 7, 1)


# --- teasers --------------------------------------------------------------------------------


def test_the_site_description_gives_way_to_the_article() -> None:
    assert real("diario1.com-legislativa.html").teaser.startswith("La normativa busca")
    assert real("regiolanda.de.filmbuero.html").teaser.startswith(
        "Göttingen war in den 1950er Jahren"
    )  # the description is only the title
    assert real("d43f330cbaf74e92b9aec85e937cb904.html").teaser.startswith(
        "hallo, hat jemand eine idee"
    )  # a forum's generic description; the first post


def test_teaser_without_credit_headline_or_byline() -> None:
    assert real("247wallst.com1.html").teaser.startswith("December 28, 2014: Markets opened")
    text = "Storm closes the bridge - By Ann Lee The bridge was closed on Monday after the storm."
    assert clean_teaser(text, "Storm closes the bridge", "Ann Lee") == (
        "The bridge was closed on Monday after the storm."
    )
    # A teaser that merely begins with the same words as the headline stays whole.
    text = "Olive & Herb Focaccia Bread with fantastic flavours of olive oil"
    assert clean_teaser(text, "Olive & Herb Focaccia Bread") == text


def test_teaser_noise_is_removed() -> None:
    assert clean_teaser("![Photo](https://x.com/a.jpg) The vote is in.") == "The vote is in."
    assert clean_teaser("The vote is in. Read full article >>") == "The vote is in."
    assert clean_teaser("The vote is in. Contact: news@example.com") == "The vote is in. Contact:"
    assert clean_teaser("The vote is in. © 2024 Example Media. All rights reserved.") == (
        "The vote is in."
    )
    assert (
        clean_teaser("Breaking news! " * 8 + "The vote is in.") == "Breaking news! The vote is in."
    )


def test_site_description_is_told_by_its_words() -> None:
    body = "The council voted on Monday to close the old bridge for repairs until spring."
    site = "Your source for local news, sports, weather, traffic and entertainment every day."
    assert is_site_description(site, "Council closes the bridge", body)
    assert not is_site_description(
        "Council voted to close the bridge for repairs", "Council closes the bridge", body
    )
