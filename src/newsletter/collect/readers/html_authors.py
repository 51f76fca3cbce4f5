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


def page_author(
    article: dict[str, Any],
    metas: dict[str, str],
    tree: Any,
    organisations: set[str],
    guess: Callable[[], str | None],
) -> str | None:
    """Declared bylines first (the article node, meta tags, Parse.ly); the page's byline
    markup; `guess` (trafilatura's) only when the page declares none at all."""
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
    guessed = guess()
    people = named_people([guessed], organisations) if guessed else []
    return ", ".join(people) or None
