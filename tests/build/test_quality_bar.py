"""The quality bar asserted directly on real builds: the sample and a 20-story issue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import html as lxml_html

from bench.twenty_stories import write_twenty_story_issue
from newsletter.build.checks import GMAIL_CLIP_BYTES, SIZE_WARNING_BYTES
from newsletter.build.output import make_build
from newsletter.build.result import Build
from newsletter.config import load_settings
from newsletter.merge_tags import MERGE_TAGS


@pytest.fixture(params=["sample", "twenty"])
def built(request: pytest.FixtureRequest, workspace: Path) -> Build:
    write_twenty_story_issue(workspace)
    return make_build(load_settings(workspace), request.param)


def _doc(build: Build) -> lxml_html.HtmlElement:
    return lxml_html.document_fromstring(build.rendered.email_html.encode())


def test_checks_pass(built: Build) -> None:
    assert built.ok, [f for f in built.findings if f.level == "error"]


def test_size_under_gmail_clip_and_twenty_stories_under_warning(built: Build) -> None:
    size = len(built.rendered.email_html.encode())
    assert size < GMAIL_CLIP_BYTES
    assert size < SIZE_WARNING_BYTES, "the 20-story issue must stay under 90,000 bytes"
    if built.slug == "twenty":
        assert len(built.issue.articles()) == 20
        assert sum(a.image is not None for a in built.issue.articles()) == 20


def test_head(built: Build) -> None:
    html = built.rendered.email_html
    doc = _doc(built)
    assert html.lower().startswith("<!doctype html>")
    assert doc.get("lang") == "en"
    assert doc.xpath("//meta[@http-equiv='Content-Type']/@content") == ["text/html; charset=UTF-8"]
    assert doc.xpath("//meta[@name='viewport']")
    assert doc.findtext(".//title") == built.issue.subject


def test_preheader_is_hidden_and_first(built: Build) -> None:
    body = _doc(built).find("body")
    assert body is not None
    first = body[0]
    assert "display:none" in first.get("style", "").replace(" ", "")
    text = first.text_content().strip()
    assert text == built.issue.preheader
    assert 35 <= len(text) <= 140


def test_images_tables_and_width(built: Build) -> None:
    doc = _doc(built)
    images = list(doc.iter("img"))
    assert len(images) == (20 if built.slug == "twenty" else 0)
    assert all(img.get("alt") for img in images)
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
    assert any("max-width: 480px" in s and "!important" in s for s in media)
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
