"""Article pages (.html files and URLs): what a teaser card needs, from the page's own metadata.

Order of trust: the metadata the publisher wrote for sharing (OpenGraph, Twitter cards,
JSON-LD, microdata, microformats via extruct; <link rel=canonical>, <meta>), then trafilatura,
which reads the article text itself, for what is still missing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from newsletter.collect.readers.base import (
    Document,
    Found,
    Reader,
    cut_teaser,
    first_of,
    make_article,
    plain_text,
    squash,
)
from newsletter.collect.readers.html_values import (
    absolute,
    byline_names,
    flatten_graph,
    id_of,
    iso_date,
    json_field,
    meta_tags,
    mf_properties,
    name_key,
    name_of,
    named_people,
    names_of,
    organisation_names,
    text_of,
    url_of,
    without_site_name,
)
from newsletter.collect.readers.images import is_tracking_image
from newsletter.errors import SourceError

ARTICLE_TYPES = {
    "article",
    "newsarticle",
    "blogposting",
    "reportagenewsarticle",
    "analysisnewsarticle",
    "opinionnewsarticle",
    "scholarlyarticle",
    "techarticle",
    "report",
    "posting",
    "socialmediaposting",
    "liveblogposting",
    "h-entry",
}
AUTHOR_META = ("author", "article:author", "article_author", "sailthru.author", "dc.creator", "byl")
DATE_META = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "date",
    "dc.date",
    "dc.date.issued",
    "dcterms.created",
    "dcterms.issued",
    "sailthru.date",
    "parsely-pub-date",
)


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
    return _Page(html_text, base_url).metadata()


class _Page:
    def __init__(self, html_text: str, base_url: str | None) -> None:
        import lxml.html

        # lxml refuses str input that carries an XML encoding declaration.
        self.text = re.sub(r"^\s*<\?xml[^>]*\?>", "", html_text)
        try:
            self.tree = lxml.html.fromstring(self.text or "<html></html>")
        except (ValueError, lxml.etree.ParserError):
            self.tree = lxml.html.fromstring("<html></html>")
        self.given_url = base_url
        self.metas = meta_tags(self.tree)

    def metadata(self) -> PageMetadata:
        title = self.title()
        image, image_alt = self.image()
        return PageMetadata(
            title=title,
            teaser=self.teaser(),
            image=image,
            image_alt=image_alt or None,
            url=self.url(),
            date=self.date(),
            author=self.author(),
            site_name=self.site_name(),
        )

    # --- sources of metadata, each computed once -------------------------------------------

    @cached_property
    def structured(self) -> dict[str, list[Any]]:
        import extruct

        try:
            data: dict[str, list[Any]] = extruct.extract(
                self.text,
                base_url=self.given_url,
                syntaxes=["json-ld", "microdata", "microformat", "opengraph"],
                uniform=False,
                errors="ignore",
            )
        except Exception:  # extruct wraps several parsers; a broken block must not stop `add`
            data = {}
        return data

    @cached_property
    def opengraph(self) -> dict[str, str]:
        first: dict[str, str] = {}
        for block in self.structured.get("opengraph", []):
            for key, value in block.get("properties", []):
                if isinstance(value, str) and value.strip():
                    first.setdefault(key.lower(), value.strip())
        return first

    @cached_property
    def article(self) -> dict[str, Any]:
        """The first JSON-LD, microdata or microformat node describing an article."""
        for node in self._nodes():
            types = node.get("@type") or node.get("type") or []
            types = [types] if isinstance(types, str) else types
            if any(str(t).lower().rsplit("/", 1)[-1] in ARTICLE_TYPES for t in types):
                return node
        return {}

    def _nodes(self) -> Iterator[dict[str, Any]]:
        for node in self.structured.get("json-ld", []):
            yield from flatten_graph(node)
        for node in self.structured.get("microdata", []):
            if isinstance(node, dict):
                yield {"@type": node.get("type"), **node.get("properties", {})}
        for node in self.structured.get("microformat", []):
            if isinstance(node, dict):
                yield {"@type": node.get("type"), **mf_properties(node)}

    @cached_property
    def extracted(self) -> Any:
        """trafilatura's reading of the page (title, author, date, text with images)."""
        import trafilatura

        try:
            return trafilatura.bare_extraction(
                self.text,
                url=self.given_url,
                include_images=True,
                include_comments=False,
                with_metadata=True,
            )
        except Exception:  # a fallback only: whatever it trips on, the declared metadata stands
            return None

    def _extracted(self, name: str) -> str | None:
        value = getattr(self.extracted, name, None) if self.extracted is not None else None
        return value if isinstance(value, str) and value.strip() else None

    # --- fields -----------------------------------------------------------------------------

    def site_name(self) -> str | None:
        publisher = self.article.get("publisher")
        return first_of(
            self.opengraph.get("og:site_name"),
            self.metas.get("og:site_name"),
            self.metas.get("application-name"),
            name_of(publisher),
        )

    def title(self) -> str | None:
        title = first_of(
            self.opengraph.get("og:title"),
            self.metas.get("og:title"),
            self.metas.get("twitter:title"),
            self.metas.get("twitter:text:title"),
            text_of(self.article.get("headline")),
            self.metas.get("headline"),
            self._article_heading,
            text_of(self.article.get("name")),
            self.metas.get("title"),
            lambda: self._extracted("title"),
            self._title_tag,
        )
        return without_site_name(plain_text(title), self.site_name()) if title else None

    def _article_heading(self) -> str | None:
        """The article's own heading: the first <h1> inside <article> or an itemprop=headline."""
        for path in (".//article//h1", ".//*[@itemprop='headline']"):
            for found in self.tree.iterfind(path):
                text = squash(found.text_content())
                if text:
                    return text
        return None

    def _title_tag(self) -> str | None:
        found = self.tree.find(".//title")
        return found.text_content() if found is not None else None

    def teaser(self) -> str | None:
        described = first_of(
            self.opengraph.get("og:description"),
            self.metas.get("og:description"),
            self.metas.get("twitter:description"),
            self.metas.get("description"),
            text_of(self.article.get("description")),
            text_of(self.article.get("summary")),
        )
        text = plain_text(described) if described else self._first_paragraph()
        return cut_teaser(text) if text else None

    def _first_paragraph(self) -> str | None:
        """The first line of running text: long, else at least a finished sentence."""
        title = (self.title() or "").casefold()
        lines = [squash(line.strip("|# ")) for line in (self._extracted("text") or "").splitlines()]
        lines = [line for line in lines if not line.startswith("![") and line.casefold() != title]
        return next((line for line in lines if len(line) >= 40), None) or next(
            (line for line in lines if line.endswith((".", "!", "?", "…"))), None
        )

    def base(self) -> str | None:
        """Where relative links point: <base href>, the given address, else the page's own."""
        page = self.given_url or absolute(self._declared_url_raw(), None)
        base_tag = self.tree.find(".//base[@href]")
        if base_tag is not None:
            return absolute(base_tag.get("href"), page) or page
        return page

    def _declared_url_raw(self) -> str | None:
        return first_of(
            self.opengraph.get("og:url"),
            self.metas.get("og:url"),
            self.metas.get("twitter:url"),
            text_of(self.article.get("url")),
            id_of(self.article.get("mainEntityOfPage")),
            self.metas.get("dc.identifier"),
        )

    def url(self) -> str | None:
        base = self.base()
        canonical = self._canonical_href()
        return first_of(
            absolute(canonical, base),
            absolute(self._declared_url_raw(), base),
            self.given_url,
        )

    def _canonical_href(self) -> str | None:
        for link in self.tree.iterfind(".//link[@href]"):
            if "canonical" in (link.get("rel") or "").lower().split():
                href = (link.get("href") or "").strip()
                # A bare token such as href="8003098" is a CMS bug, not an address.
                if href.startswith(("http://", "https://", "//", "/")):
                    return href
        return None

    def image(self) -> tuple[str | None, str | None]:
        base = self.base()
        declared = first_of(
            self.opengraph.get("og:image"),
            self.opengraph.get("og:image:url"),
            self.opengraph.get("og:image:secure_url"),
            self.metas.get("og:image"),
            self.metas.get("twitter:image"),
            self.metas.get("twitter:image:src"),
            url_of(self.article.get("image")),
            url_of(self.article.get("thumbnailUrl")),
            url_of(self.article.get("photo")),
            self._link_href("image_src"),
        )
        alt = first_of(
            self.opengraph.get("og:image:alt"),
            self.metas.get("og:image:alt"),
            self.metas.get("twitter:image:alt"),
        )
        width = first_of(self.opengraph.get("og:image:width"), self.metas.get("og:image:width"))
        height = first_of(self.opengraph.get("og:image:height"), self.metas.get("og:image:height"))
        src = absolute(declared, base)
        if src and not is_tracking_image(src, width, height):
            return src, alt
        sizes = self._declared_sizes()
        for content_src, content_alt in self._content_images():
            src = absolute(content_src, base)
            if src and not is_tracking_image(src, *sizes.get(content_src, (None, None))):
                return src, first_of(alt, content_alt)
        return None, None

    def _declared_sizes(self) -> dict[str, tuple[str | None, str | None]]:
        """width and height attributes of the page's <img> tags, by src as written."""
        sizes: dict[str, tuple[str | None, str | None]] = {}
        for img in self.tree.iterfind(".//img[@src]"):
            sizes.setdefault(str(img.get("src")).strip(), (img.get("width"), img.get("height")))
        return sizes

    def _content_images(self) -> Iterator[tuple[str, str]]:
        for match in re.finditer(r"!\[([^\]]*)\]\(([^)\s]+)\)", self._extracted("text") or ""):
            yield match.group(2), match.group(1)

    def _link_href(self, rel: str) -> str | None:
        for link in self.tree.iterfind(".//link[@href]"):
            if rel in (link.get("rel") or "").lower().split():
                return str(link.get("href"))
        return None

    def date(self) -> dt.date | None:
        for value in (
            text_of(self.article.get("datePublished")),
            text_of(self.article.get("dateCreated")),
            text_of(self.article.get("published")),
            *(self.metas.get(name) for name in DATE_META),
            json_field(self.metas.get("parsely-page"), "pub_date"),
            text_of(self.article.get("dateModified")),
            text_of(self.article.get("updated")),
            self._extracted("date"),
        ):
            if parsed := iso_date(value):
                return parsed
        return None

    def author(self) -> str | None:
        """Declared bylines first; trafilatura's guess only when the page declares none."""
        organisations = self._organisation_names()
        declared = [
            names_of(self.article.get("author")),
            names_of(self.article.get("creator")),
            *([self.metas[name]] for name in AUTHOR_META if name in self.metas),
            [json_field(self.metas.get("parsely-page"), "author") or ""],
            [json_field(self.metas.get("parsely-metadata"), "author_nickname") or ""],
        ]
        declared = [names for names in declared if any(n.strip() for n in names)]
        for names in declared:
            if people := named_people(names, organisations):
                return ", ".join(people)
        if people := named_people(byline_names(self.tree), organisations):
            return ", ".join(people)
        # An organisation (not the site itself) as author only where no person is named.
        for value in (self.article.get("author"), self.article.get("creator")):
            if orgs := named_people(organisation_names(value), organisations):
                return ", ".join(orgs)
        if declared:
            return None
        guessed = self._extracted("author")
        people = named_people([guessed], organisations) if guessed else []
        return ", ".join(people) or None

    def _organisation_names(self) -> set[str]:
        names = {self.site_name(), name_of(self.article.get("publisher"))}
        names.add(name_of(self.article.get("sourceOrganization")))
        for address in (self.given_url, self._canonical_href(), self._declared_url_raw()):
            host = urlsplit(address or "").hostname or ""
            labels = host.removeprefix("www.").split(".")
            names.update({host, labels[0], ".".join(labels[:-1])})
        return {name_key(name) for name in names if name}
