"""The quality bar asserted directly on real builds: the sample, a 20- and a 30-story issue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import html as lxml_html

from bench.twenty_stories import write_twenty_story_issue
from newsletter.build.checks import CLIENT_METAS, GMAIL_CLIP_BYTES, SIZE_WARNING_BYTES
from newsletter.build.finish import preheader_text
from newsletter.build.outlook import outlook_view, width_problems
from newsletter.build.output import make_build
from newsletter.build.result import Build
from newsletter.config import load_settings
from newsletter.merge_tags import MERGE_TAGS

STORIES = {"sample": 11, "twenty": 20, "thirty": 30}


@pytest.fixture(params=["sample", "twenty", "thirty"])
def built(request: pytest.FixtureRequest, workspace: Path) -> Build:
    write_twenty_story_issue(workspace)
    write_twenty_story_issue(workspace, "thirty", stories=30)
    return make_build(load_settings(workspace), request.param)


def _doc(build: Build) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(build.rendered.email_html.encode())


def test_checks_pass(built: Build) -> None:
    assert built.ok, [f for f in built.findings if f.level == "error"]


def test_size_under_gmail_clip_and_thirty_stories_under_warning(built: Build) -> None:
    size = len(built.rendered.email_html.encode())
    assert size < GMAIL_CLIP_BYTES
    assert size < SIZE_WARNING_BYTES, f"{built.slug} must stay under 90,000 bytes"
    assert len(built.issue.articles()) == STORIES[built.slug]
    if built.slug != "sample":
        assert all(a.image is not None for a in built.issue.articles())


def test_head(built: Build) -> None:
    html = built.rendered.email_html
    doc = _doc(built)
    assert html.lower().startswith("<!doctype html>")
    assert doc.get("lang") == "en"
    assert doc.xpath("//meta[@http-equiv='Content-Type']/@content") == ["text/html; charset=UTF-8"]
    assert doc.xpath("//meta[@name='viewport']")
    metas = {meta.get("name"): meta.get("content") for meta in doc.xpath("//head/meta[@name]")}
    assert {name for name, _ in CLIENT_METAS} <= set(metas)
    assert metas["color-scheme"] == metas["supported-color-schemes"] == "light dark"
    assert "telephone=no" in (metas["format-detection"] or "")
    assert doc.findtext(".//title") == built.issue.subject


def test_preheader_is_hidden_and_first(built: Build) -> None:
    body = _doc(built).find("body")
    assert body is not None
    first = body[0]
    style = first.get("style", "").replace(" ", "")
    assert "display:none" in style and "mso-hide:all" in style
    assert "color:" not in style, "a preheader colour is a low-contrast signal to spam filters"
    assert preheader_text(first.text_content()) == built.issue.preheader
    assert first.text_content().endswith("\u200c\xa0" * 60)
    assert 35 <= len(built.issue.preheader) <= 140


def test_images_tables_and_width(built: Build) -> None:
    doc = _doc(built)
    images = list(doc.iter("img"))
    assert len(images) == (0 if built.slug == "sample" else STORIES[built.slug])
    assert all(img.get("alt") for img in images)
    # Sized to their column: lead 600 - 2x24, list thumbnail 204 - 24, grid 288 - 2x12.
    assert sorted({img.get("width") for img in images}) == (
        [] if built.slug == "sample" else ["180", "264", "552"]
    )
    tables = list(doc.iter("table"))
    assert tables and all(t.get("role") == "presentation" for t in tables)
    widths = [int(w) for w in re.findall(r"max-width:(\d+)px", built.rendered.email_html)]
    assert max(widths) == 600


def test_nothing_unsafe_or_external(built: Build) -> None:
    doc = _doc(built)
    assert not doc.xpath("//script")
    assert not doc.xpath("//link")
    for element in doc.iter():
        if isinstance(element.tag, str):
            assert not any(name.startswith("on") for name in element.attrib), element.tag
    hrefs = [a.get("href") for a in doc.iter("a")]
    for href in hrefs:
        assert href.startswith(("https://", "mailto:")) or href == MERGE_TAGS["unsubscribe_url"]
    assert MERGE_TAGS["unsubscribe_url"] in hrefs


def test_responsive_css_survives_inlining(built: Build) -> None:
    doc = _doc(built)
    styles = [s.text_content() for s in doc.iter("style")]
    media = [s for s in styles if "@media" in s]
    assert any("max-width: 479px" in s and "!important" in s for s in media)
    assert any(".mj-column-per-50 { width:50% !important" in s for s in media) or (
        built.slug == "sample" and any("mj-column-per" in s for s in media)
    )
    assert "<!--[if mso" in built.rendered.email_html
    # Our own classes were inlined by premailer; MJML's blocks were left alone.
    assert re.search(r'<h1 style="[^"]*font-size:28px', built.rendered.email_html)
    assert "<mj-" not in built.rendered.email_html
    assert "{{" not in built.rendered.email_html


def test_text_part(built: Build) -> None:
    text = built.rendered.text
    assert not re.search(r"<[a-zA-Z/][^>]*>", text)
    for article in built.issue.articles():
        assert article.url in text
        assert article.title.split()[0] in text
    assert f"Unsubscribe: {MERGE_TAGS['unsubscribe_url']}" in text
    assert max(len(line.encode()) for line in text.splitlines()) <= 998
    for section in built.issue.sections:
        assert section.title.upper() in text


def test_outlook_rows_and_images_fit_600px(built: Build) -> None:
    assert width_problems(built.rendered.email_html) == []
    view = lxml_html.document_fromstring(outlook_view(built.rendered.email_html).encode())
    columns = [
        int(width)
        for width in view.xpath("//td/@style")
        for width in re.findall(r"^vertical-align:top;width:(\d+)px", width)
    ]
    assert set(columns) <= {600, 288, 204, 396}
    assert 288 in columns and (built.slug == "sample" or {204, 396} <= set(columns))


def test_one_link_per_story_in_reading_order(built: Build) -> None:
    doc = _doc(built)
    track = {a.url: a for a in built.issue.articles()}
    hrefs = [a.get("href").split("?")[0] for a in doc.iter("a")]
    story_links = [href for href in hrefs if href in track]
    assert story_links == [a.url for a in built.issue.articles()]
    assert not doc.xpath("//a//img"), "images are not links of their own"
    lead = built.issue.sections[0].articles[0]
    button = doc.xpath("//td[contains(@class, 'nl-button')]/a")
    assert [a.get("aria-label") for a in button] == [f"Read the full story: {lead.title}"]


def test_dark_mode_rules_for_apple_mail_and_outlook(built: Build) -> None:
    styles = " ".join(s.text_content() for s in _doc(built).iter("style"))
    assert "prefers-color-scheme: dark" in styles
    for selector in (
        "[data-ogsc] .nl-card h3 a",
        "[data-ogsb] .nl-body",
        "[data-ogsc] .nl-card .nl-meta",
    ):
        assert selector in styles
