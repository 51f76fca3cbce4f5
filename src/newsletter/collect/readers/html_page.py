"""One article page read for its teaser card: the declared metadata first, then what a reader
sees after the headline; trafilatura (slow to load) only when both say nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from newsletter.collect.readers import html_body
from newsletter.collect.readers.base import cut_teaser, first_of, plain_text, squash
from newsletter.collect.readers.dates import parse_date, url_date
from newsletter.collect.readers.html_authors import page_author
from newsletter.collect.readers.html_values import (
    absolute,
    flatten_graph,
    id_of,
    json_field,
    meta_tags,
    mf_properties,
    name_key,
    name_of,
    text_of,
    url_of,
    without_site_name,
)
from newsletter.collect.readers.images import is_tracking_image
from newsletter.collect.readers.structured import structured_data
from newsletter.collect.readers.teasers import clean_teaser, is_site_description

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
# Nodes that describe something other than the page's own piece of writing.
NOT_THE_WORK = {"organization", "person", "website", "webpage", "breadcrumblist", "imageobject"}
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
    "sw-pubdate",
    "item-publish-date",
    "publish-date",
    "article_date_original",
    "uploaddate",
)


def _types(node: dict[str, Any]) -> list[str]:
    types = node.get("@type") or node.get("type") or []
    types = [types] if isinstance(types, str) else types
    return [str(t).lower().rsplit("/", 1)[-1] for t in types]


class Page:
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

    # --- sources of metadata, each computed once -------------------------------------------

    @cached_property
    def structured(self) -> dict[str, list[Any]]:
        return structured_data(self.tree)

    @cached_property
    def opengraph(self) -> dict[str, str]:
        """OpenGraph properties (<meta property=og:...>), first non-empty value of each."""
        first: dict[str, str] = {}
        for meta in self.tree.iterfind(".//meta[@property]"):
            key, value = str(meta.get("property")).strip().lower(), meta.get("content") or ""
            if value.strip():
                first.setdefault(key, value.strip())
        return first

    @cached_property
    def article(self) -> dict[str, Any]:
        """The JSON-LD/microdata/microformat node of the article: typed as one, else the first
        creative work with a headline or an author (a HowTo, a Recipe, a VideoObject)."""
        nodes = list(self._nodes())
        for node in nodes:
            if any(t in ARTICLE_TYPES for t in _types(node)):
                return node
        for node in nodes:
            types = _types(node)
            if (
                types
                and not set(types) & NOT_THE_WORK
                and (node.get("author") or node.get("headline"))
            ):
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
        """trafilatura's reading of the page: loaded (0.15 s) only when the page says too little."""
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

    @cached_property
    def language(self) -> str | None:
        return first_of(
            self.tree.get("lang"),
            self.metas.get("content-language"),
            self.metas.get("og:locale"),
            self.metas.get("language"),
            self.metas.get("dc.language"),
        )

    # --- title --------------------------------------------------------------------------------

    def site_name(self) -> str | None:
        return first_of(
            self.opengraph.get("og:site_name"),
            self.metas.get("og:site_name"),
            self.metas.get("application-name"),
            name_of(self.article.get("publisher")),
        )

    def _strip_site(self, title: str | None) -> str | None:
        if not title or not plain_text(title):
            return None
        title = plain_text(title)
        for site in (self.site_name(), *self.site_labels):
            title = without_site_name(title, site)
        return title

    @cached_property
    def declared_titles(self) -> list[str]:
        """Every title the page declares for itself, site names cut."""
        found = [
            self._strip_site(value)
            for value in (
                self.opengraph.get("og:title"),
                self.metas.get("og:title"),
                self.metas.get("twitter:title"),
                text_of(self.article.get("headline")),
                self.metas.get("headline"),
                text_of(self.article.get("name")),
                self.metas.get("title"),
                self._title_tag(),
            )
        ]
        return [title for title in found if title]

    @cached_property
    def heading(self) -> Any | None:
        """The visible headline: the heading that matches a declared title."""
        return html_body.headline_element(self.tree, self.declared_titles)

    def title(self) -> str | None:
        if self.heading is not None:
            return self._strip_site(self.heading.text_content())
        title = first_of(
            self.opengraph.get("og:title"),
            self.metas.get("og:title"),
            self.metas.get("twitter:title"),
            text_of(self.article.get("headline")),
            self.metas.get("headline"),
            self._article_heading,
            text_of(self.article.get("name")),
            self.metas.get("title"),
            lambda: self._extracted("title"),
            self._title_tag,
        )
        return self._strip_site(title)

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

    # --- teaser -------------------------------------------------------------------------------

    def teaser(self) -> str | None:
        title = self.title()
        described = first_of(
            self.opengraph.get("og:description"),
            self.metas.get("og:description"),
            self.metas.get("twitter:description"),
            self.metas.get("description"),
            text_of(self.article.get("description")),
            text_of(self.article.get("summary")),
        )
        text = plain_text(described) if described else None
        # Only a plain <meta name=description> may be the site's template text: what the
        # publisher wrote for sharing (og:, twitter:) is about the article.
        shared = first_of(
            self.opengraph.get("og:description"), self.metas.get("twitter:description")
        )
        if text and not shared and is_site_description(text, title, self._body_text):
            text = None
        text = text or self._summary() or self._first_paragraph(title)
        text = clean_teaser(text, title, self.author()) if text else None
        return cut_teaser(text) if text else None

    @cached_property
    def _body_text(self) -> str:
        """The first paragraphs after the headline, to tell the article's words from the site's."""
        texts = html_body.paragraphs(self.tree, self.heading, 8)
        return " ".join(texts)

    def _summary(self) -> str | None:
        """A summary the page shows under its headline (class post-summary, standfirst, lead)."""
        return html_body.summary_text(self.tree, self.heading)

    def _first_paragraph(self, title: str | None) -> str | None:
        found = html_body.first_paragraph(self.tree, self.heading, title)
        if found:
            return found
        lines = [squash(line.strip("|# ")) for line in (self._extracted("text") or "").splitlines()]
        same = (title or "").casefold()
        lines = [line for line in lines if not line.startswith("![") and line.casefold() != same]
        return next((line for line in lines if len(line) >= 40), None) or next(
            (line for line in lines if line.endswith((".", "!", "?", "…"))), None
        )

    # --- address ------------------------------------------------------------------------------

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
        return first_of(
            absolute(self._canonical_href(), base),
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

    @cached_property
    def site_labels(self) -> set[str]:
        """The site's host and its main label (backstage.com -> backstage)."""
        labels: set[str] = set()
        for address in (self.given_url, self._canonical_href(), self._declared_url_raw()):
            host = (urlsplit(address or "").hostname or "").removeprefix("www.")
            if host:
                parts = host.split(".")
                # bbc.co.uk -> bbc, not co
                second_level = len(parts) >= 3 and parts[-2] in ("co", "com", "org", "net", "ac")
                labels.update({host, parts[-3] if second_level else parts[max(0, len(parts) - 2)]})
        return labels

    # --- image --------------------------------------------------------------------------------

    def image(self) -> tuple[str | None, str | None]:
        base = self.base()
        alt = first_of(
            self.opengraph.get("og:image:alt"),
            self.metas.get("og:image:alt"),
            self.metas.get("twitter:image:alt"),
        )
        width = first_of(self.opengraph.get("og:image:width"), self.metas.get("og:image:width"))
        height = first_of(self.opengraph.get("og:image:height"), self.metas.get("og:image:height"))
        for declared in (
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
        ):
            src = absolute(declared, base)
            if (
                src
                and not is_tracking_image(src, width, height)
                and not html_body.is_generic_image(src, self.site_labels)
            ):
                return src, alt
        found = html_body.lead_image(self.tree, self.heading)
        if found and (src := absolute(found[0], base)):
            return src, first_of(alt, found[1])
        return None, None

    def _link_href(self, rel: str) -> str | None:
        for link in self.tree.iterfind(".//link[@href]"):
            if rel in (link.get("rel") or "").lower().split():
                return str(link.get("href"))
        return None

    # --- date and author ----------------------------------------------------------------------

    def date(self) -> dt.date | None:
        """The declared publication day, else the date line under the headline, else the URL's."""
        for value in (
            text_of(self.article.get("datePublished")),
            text_of(self.article.get("dateCreated")),
            text_of(self.article.get("published")),
            *(self.metas.get(name) for name in DATE_META),
            json_field(self.metas.get("parsely-page"), "pub_date"),
            text_of(self.article.get("uploadDate")),
        ):
            if parsed := parse_date(value, self.language):
                return parsed
        return (
            html_body.visible_date(self.tree, self.heading, self.language)
            or url_date(self.url())
            or parse_date(text_of(self.article.get("dateModified")), self.language)
        )

    @cached_property
    def _author(self) -> str | None:
        return page_author(
            self.article,
            self.metas,
            self.tree,
            self.organisation_names(),
            lambda: html_body.paragraphs(self.tree, self.heading, 2, min_length=3),
        )

    def author(self) -> str | None:
        return self._author

    def organisation_names(self) -> set[str]:
        names = {self.site_name(), name_of(self.article.get("publisher"))}
        names.add(name_of(self.article.get("sourceOrganization")))
        for address in (self.given_url, self._canonical_href(), self._declared_url_raw()):
            host = urlsplit(address or "").hostname or ""
            labels = host.removeprefix("www.").split(".")
            names.update({host, labels[0], ".".join(labels[:-1])})
        return {name_key(name) for name in names if name}
