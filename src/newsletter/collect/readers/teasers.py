"""Teaser text hygiene shared by the page and feed readers: what is not the article's words
(a repeated headline and byline, read-more links, addresses, copyright lines, image syntax)
comes out, and a site-wide description is told from the article's own.
"""

from __future__ import annotations

import re

READ_MORE = re.compile(
    r"\s*(?:\[\s*)?(?:read (?:the )?(?:full|more|rest)\b[^.!?]*?|continue reading\b[^.!?]*?|"
    r"weiterlesen|mehr lesen|lire la suite|leer m[aá]s|seguir leyendo|read on)"
    r"\s*(?:\]\s*)?(?:»|>>|&gt;&gt;|→|\.\.\.|…)?\s*$",
    re.IGNORECASE,
)
MARKDOWN_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
EMAIL = re.compile(r"\s*\(?\b[\w.+-]+@[\w-]+\.[\w.-]+\b\)?")
COPYRIGHT = re.compile(r"\s*(?:©|\(c\)|copyright\b|all rights reserved).*$", re.IGNORECASE)
CREDIT = re.compile(
    r"^(?i:source|photo|foto|bild|image|credit|quelle)s?\s*:\s*[a-z][\w.&/-]*?(?=[A-Z])"
)
# What may follow a repeated headline: a separator, a byline, a date.
AFTER_HEADLINE = re.compile(r"^\s*([-–—:|.]|(by|von|por|par)\s|\d)", re.IGNORECASE)
REPEATED = re.compile(r"(\b[^.!?]{8,120}?[.!?]?)(?:\s*\1){2,}", re.IGNORECASE)
BYLINE_START = re.compile(r"^(?:by|von|por|par)\s+", re.IGNORECASE)
CONTENT_WORD = re.compile(r"\w{5,}")
# Below this share of its words found in the headline and first paragraphs, a description
# is the site's template text ("Immer aktuelle Apple-News, Tipps, Tricks ...").
SITE_OVERLAP = 0.34


def clean_teaser(text: str, title: str | None = None, author: str | None = None) -> str:
    """The teaser without what is not the article's own words."""
    text = MARKDOWN_IMAGE.sub(" ", text)
    text = REPEATED.sub(r"\1", text)
    text = EMAIL.sub("", text)
    text = COPYRIGHT.sub("", text)
    text = READ_MORE.sub("", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = CREDIT.sub("", text)
    if (
        title
        and text.casefold().startswith(title.casefold())
        and AFTER_HEADLINE.match(text[len(title) :])
    ):
        text = text[len(title) :].lstrip(" -–—:|.")
    for name in (author or "").split(", ")[:3]:
        rest = BYLINE_START.sub("", text)
        if name and rest.casefold().startswith(name.casefold()) and len(rest) > len(name) + 20:
            text = rest[len(name) :].lstrip(" -–—:|,.")
    return text.strip()


def is_site_description(text: str, title: str | None, body: str) -> bool:
    """A description that is the site's, not the article's: only the title again, or almost
    none of its words occur in the headline and the first paragraphs."""
    if title and text.strip(" .").casefold() == title.strip(" .").casefold():
        return True
    words = {w.casefold() for w in CONTENT_WORD.findall(text)}
    known = {w.casefold() for w in CONTENT_WORD.findall(f"{title or ''} {body}")}
    if len(words) < 5 or len(known) < 8:
        return False
    return len(words & known) / len(words) < SITE_OVERLAP
