"""Article pages (.html files and URLs): what a teaser card needs, from the page's own metadata.

Order of trust: the metadata the publisher wrote for sharing (OpenGraph, Twitter cards,
JSON-LD, microdata, microformats, <link rel=canonical>, <meta>) checked against what a reader
sees after the headline (html_page, html_body); trafilatura only for what is still missing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from newsletter.collect.readers.base import (
    Document,
    Found,
    Reader,
    make_article,
)
from newsletter.errors import SourceError


@dataclass(frozen=True)
class PageMetadata:
    """Teaser-card fields of one page; None where the page does not say."""

    title: str | None = None
    teaser: str | None = None
    image: str | None = None
    image_alt: str | None = None
    url: str | None = None
    date: dt.date | None = None
    author: str | None = None
    site_name: str | None = None


class HtmlReader(Reader):
    name = "html"
    suffixes = (".html", ".htm", ".xhtml", ".shtml")
    content_types = ("text/html", "application/xhtml+xml")

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        start = head.lstrip()[:512].lower()
        return start.startswith((b"<!doctype html", b"<html", b"<head")) or b"<html" in start

    def read(self, document: Document) -> list[Found]:
        meta = page_metadata(document.text(), document.base_url)
        if not meta.url:
            raise SourceError(
                "the page does not say its address (no canonical link or og:url)",
                where=document.location,
                fix="give it with --url ORIGINAL",
            )
        if not meta.title:
            raise SourceError(
                "no title found (not an article page?)",
                where=document.location,
                fix="give the address of an article, or write a Markdown file for it",
            )
        url = meta.url
        if self.options.url and self.options.url != meta.url:
            # The editor's --url wins over the page's canonical link; say so, they may differ
            # on purpose (a syndicated copy, a paywalled original) or by a typo.
            self.notes.append(
                f"saved with --url {self.options.url}, not the page's own address {meta.url}"
            )
            url = self.options.url
        image = {"src": meta.image, "alt": meta.image_alt or meta.title} if meta.image else None
        fields = {
            "title": meta.title,
            "url": url,
            "teaser": meta.teaser or "",
            "image": image,
            "author": meta.author,
            "date": meta.date,
        }
        return [Found(article=make_article(document.location, fields))]


def page_metadata(html_text: str, base_url: str | None = None) -> PageMetadata:
    """Everything a teaser card needs from one page; pure (no network)."""
    from newsletter.collect.readers.html_page import Page

    page = Page(html_text, base_url)
    image, image_alt = page.image()
    return PageMetadata(
        title=page.title(),
        teaser=page.teaser(),
        image=image,
        image_alt=image_alt or None,
        url=page.url(),
        date=page.date(),
        author=page.author(),
        site_name=page.site_name(),
    )
