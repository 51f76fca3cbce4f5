"""The byline of a page: declared authors (JSON-LD, microdata, meta tags, Parse.ly), then the
byline markup on the page; an organisation only where no person is named.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from newsletter.collect.readers.html_values import (
    byline_names,
    json_field,
    named_people,
    names_of,
    organisation_names,
)

AUTHOR_META = ("author", "article:author", "article_author", "sailthru.author", "dc.creator", "byl")
PARSELY_AUTHORS = (("parsely-page", "author"), ("parsely-metadata", "author_nickname"))


CREDITS = re.compile(
    r"\b(photo\w*|produced|illustrat\w*|video|graphics|translated|übersetzt)\b[^|,]{0,20}\b(by|von)\b",
    re.IGNORECASE,
)


def credits_in_byline(tree: Any) -> bool:
    """The byline also credits photographers or producers: its extra names are not authors."""
    for box in tree.xpath("//*[contains(@class, 'byline') or contains(@class, 'author')]"):
        if CREDITS.search(box.text_content()[:300]):
            return True
    return False


# A byline opening the text: "By Ann Lee", "Von Ann Lee", "حوار: NAME" (interview), "بقلم NAME".
TEXT_BYLINE = re.compile(
    r"^\s*(?:by|von|por|par|text|texto|interview|entrevista|حوار|بقلم|كتب|كتبت|إعداد)\s*[:：]?\s*"
    r"(?P<name>[^\W\d_][\w'’.-]*(?:\s+[^\W\d_][\w'’.-]*){0,3})"
    r"(?=\s*(?:$|[-–—|,،.:\n]))",
    re.IGNORECASE,
)


def text_byline(lines: list[str]) -> str | None:
    """The name in a byline that opens the article's text, if its first line is one."""
    for line in lines[:2]:
        match = TEXT_BYLINE.match(line[:80])
        name = match.group("name").strip() if match else ""
        # Names in cased scripts are capitalised: "By the way, ..." is no byline.
        if name and not any(word[0].islower() for word in name.split()):
            return name
    return None


def page_author(
    article: dict[str, Any],
    metas: dict[str, str],
    tree: Any,
    organisations: set[str],
    first_lines: Callable[[], list[str]],
) -> str | None:
    """Declared bylines first (the article node, meta tags, Parse.ly); the page's byline
    markup; a byline opening the text; an organisation only where no person is named."""
    declared = [
        names_of(article.get("author")),
        names_of(article.get("creator")),
        *([metas[name]] for name in AUTHOR_META if name in metas),
        [metas.get("parsely-author") or ""],
        *([json_field(metas.get(meta), key) or ""] for meta, key in PARSELY_AUTHORS),
    ]
    declared = [names for names in declared if any(n.strip() for n in names)]
    shown = named_people(byline_names(tree), organisations)
    for names in declared:
        if people := named_people(names, organisations):
            # A declared list cut short ("creator": the first of five): the byline has them all.
            if set(people) < set(shown) and not credits_in_byline(tree):
                return ", ".join(shown)
            return ", ".join(people)
    if shown:
        return ", ".join(shown)
    # An organisation (not the site itself) as author only where no person is named.
    for value in (article.get("author"), article.get("creator")):
        if orgs := named_people(organisation_names(value), organisations):
            return ", ".join(orgs)
    if declared:
        return None
    found = text_byline(first_lines())
    people = named_people([found], organisations) if found else []
    return ", ".join(people) or None
