"""Markdown files with YAML front matter: one article an editor wrote or noted down by hand.

Front matter keys: title and url (required; url may come from --url), image (an address, or
a mapping with src and alt), image_alt, teaser (else summary, description or the body's
first paragraph), author (a name or a list), date (YYYY-MM-DD), label, section.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from newsletter.collect.readers.base import (
    Document,
    Found,
    Reader,
    cut_teaser,
    make_article,
    plain_text,
)
from newsletter.errors import SourceError

TEASER_KEYS = ("teaser", "summary", "description", "excerpt")
FRONT_MATTER = re.compile(r"^\ufeff?---[ \t]*\r?\n")


class MarkdownReader(Reader):
    name = "markdown"
    suffixes = (".md", ".markdown", ".mdown")
    content_types = ("text/markdown", "text/x-markdown")

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head.startswith((b"---\n", b"---\r\n", b"\xef\xbb\xbf---\n"))

    def read(self, document: Document) -> list[Found]:
        meta, body = _split(document)
        title = _text(meta, "title")
        if not title:
            raise SourceError(
                "the front matter has no title",
                where=document.location,
                fix="add a line `title: ...` between the --- lines at the top",
            )
        url = _text(meta, "url", "link") or document.base_url
        if not url:
            raise SourceError(
                "the front matter has no url",
                where=document.location,
                fix="add a line `url: https://...` at the top, or give it with --url",
            )
        teaser = next((t for key in TEASER_KEYS if (t := _text(meta, key))), None)
        fields = {
            "title": title,
            "url": url,
            "teaser": cut_teaser(plain_text(teaser) if teaser else _first_paragraph(body)),
            "image": _image(meta, title),
            "author": _author(meta),
            "date": _date(meta),
            "label": _text(meta, "label"),
        }
        return [
            Found(article=make_article(document.location, fields), section=_text(meta, "section"))
        ]


def _split(document: Document) -> tuple[dict[str, Any], str]:
    import frontmatter
    import yaml

    text = document.text()
    if not FRONT_MATTER.match(text):
        raise SourceError(
            "no front matter (the file must start with a line `---`)",
            where=document.location,
            fix="put title: and url: between two `---` lines at the top",
        )
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as error:
        # An unclosed bracket is reported at the end of the text; where it opened helps more.
        mark = getattr(error, "context_mark", None) or getattr(error, "problem_mark", None)
        # python-frontmatter hands YAML the text from the end of the opening --- line on,
        # so YAML's 0-based line + 1 is the file's line.
        where = f"{document.location}:{mark.line + 1}" if mark else document.location
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise SourceError(
            f"front matter is not valid YAML ({problem})",
            where=where,
            fix="check the quoting and indentation between the --- lines",
        ) from None
    if not isinstance(post.metadata, dict) or not post.metadata:
        raise SourceError(
            "the front matter is empty or not a mapping",
            where=document.location,
            fix="write `key: value` lines such as title: and url: between the --- lines",
        )
    return dict(post.metadata), post.content


def _text(meta: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = meta.get(key)
        if isinstance(value, str | int | float) and str(value).strip():
            return str(value).strip()
    return None


def _first_paragraph(body: str) -> str:
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(body)
    for paragraph in re.findall(r"<p>(.*?)</p>", rendered, re.DOTALL):
        text = plain_text(paragraph)
        if text:
            return text
    return ""


def _image(meta: dict[str, Any], title: str) -> dict[str, Any] | None:
    image = meta.get("image")
    if isinstance(image, dict):
        return {"alt": _text(meta, "image_alt") or title, **image}
    if isinstance(image, str) and image.strip():
        return {"src": image.strip(), "alt": _text(meta, "image_alt", "alt") or title}
    return None


def _author(meta: dict[str, Any]) -> str | None:
    value = meta.get("author") or meta.get("authors")
    if isinstance(value, list):
        return ", ".join(str(name).strip() for name in value if str(name).strip()) or None
    return _text({"author": value}, "author")


def _date(meta: dict[str, Any]) -> dt.date | str | None:
    value = meta.get("date")
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return str(value) if value else None
