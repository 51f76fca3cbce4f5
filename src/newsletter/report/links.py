"""Which story a clicked link belongs to: by the article URL SendGrid reports in the click.

No redirect service of our own: the links in the email are the articles' own addresses with
UTM parameters, and SendGrid's click event carries the URL as it was in the message. A URL
matches its story exactly, or with tracking parameters and the fragment set aside.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from newsletter.issue.model import Issue

_TRACKING_PREFIXES = ("utm_", "mc_", "fbclid", "gclid")


@dataclass(frozen=True)
class Story:
    title: str
    section: str
    url: str


def link_key(url: str) -> str:
    """The URL without tracking parameters and fragment, host in lower case."""
    parts = urlsplit(url.strip())
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not name.lower().startswith(_TRACKING_PREFIXES)
    ]
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, urlencode(query), ""))


def unsubscribe_like(unsubscribe_url: str) -> str:
    """A SQL LIKE pattern (escape character \\) for the unsubscribe links made from
    `unsubscribe_url`: its scheme, host and path, then a query (the token), as
    `LinkMap.kind` tells them."""
    base = urlunsplit((*urlsplit(unsubscribe_url)[:3], "", ""))
    escaped = base.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "?%"


class LinkMap:
    """Stories by link, plus the links that are not stories (unsubscribe, web version)."""

    def __init__(self, issue: Issue, web_url: str | None, unsubscribe_url: str | None) -> None:
        self._stories: dict[str, Story] = {}
        for section in issue.sections:
            for article in section.articles:
                story = Story(article.title, section.title, article.url)
                self._stories.setdefault(link_key(article.url), story)
        self._web = link_key(web_url) if web_url else None
        self._unsubscribe = urlsplit(unsubscribe_url)[:3] if unsubscribe_url else None

    @property
    def stories(self) -> list[Story]:
        return list(self._stories.values())

    def story(self, url: str) -> Story | None:
        return self._stories.get(link_key(url))

    def kind(self, url: str) -> str:
        """ "story", "unsubscribe", "web version" or "other" (e.g. no longer in the issue)."""
        if self.story(url) is not None:
            return "story"
        if self._unsubscribe is not None and urlsplit(url)[:3] == self._unsubscribe:
            return "unsubscribe"
        if self._web is not None and link_key(url) == self._web:
            return "web version"
        return "other"
