"""The core of `add`: read sources, merge their articles into issue.yaml, dedupe, warn on repeats.

The issue file is the editor's: articles are appended, nothing is reordered, comments and
unknown keys survive (ruamel round-trip), and the file is replaced atomically or not at all.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from newsletter.collect.readers.base import Found, ReadOptions
from newsletter.collect.readers.registry import Collected, read_source
from newsletter.errors import IssueFileError, NewsletterError, SourceError
from newsletter.issue.file import read_document, save_document
from newsletter.issue.model import ISSUE_FILE, Article

DEFAULT_SECTION = "Articles"
DEFAULT_RECENT = 5
# Parameters that say how a reader arrived, not which article it is.
TRACKING_PARAMETER = re.compile(
    r"^(utm_\w*|fbclid|gclid|dclid|gclsrc|msclkid|yclid|mc_cid|mc_eid|_hsenc|_hsmi|igshid|"
    r"ref|ref_src|ref_url|cmpid|icid|ncid|ocid|sr_share|spm|share|smid|cid|xtor|__twitter_impression)$",
    re.IGNORECASE,
)


def canonical_url(url: str) -> str:
    """The identity of an article's address, for spotting duplicates.

    Ignores the scheme, `www.`, letter case of the host, default ports, tracking
    parameters, parameter order, fragments and trailing slashes.
    """
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    query = sorted(
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not TRACKING_PARAMETER.match(key)
    )
    path = parts.path.rstrip("/")
    return urlunsplit(("", host, path, urlencode(query), ""))


def shared_pages(urls: Iterable[str]) -> set[str]:
    """Pages that several posts share, told apart only by their #fragment (Scripting News)."""
    fragments: dict[str, set[str]] = {}
    for url in urls:
        fragment = urlsplit(url.strip()).fragment
        if fragment:
            fragments.setdefault(canonical_url(url), set()).add(fragment)
    return {page for page, seen in fragments.items() if len(seen) > 1}


def identity(url: str, shared: set[str]) -> str:
    """canonical_url, keeping the #fragment where it names one post among several on a page."""
    key = canonical_url(url)
    fragment = urlsplit(url.strip()).fragment
    return f"{key}#{fragment}" if fragment and key in shared else key


@dataclass(frozen=True)
class Added:
    section: str
    article: Article


@dataclass(frozen=True)
class Skipped:
    article: Article
    reason: str


@dataclass
class Merged:
    added: list[Added] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def merge(document: CommentedMap, found: Iterable[Found], section: str | None = None) -> Merged:
    """Append new articles to their sections of `document` (in place); skip known URLs.

    `section` (the --section option) overrides the grouping a source suggests; without
    either, articles go to the issue's last section (or a new "Articles" one). Missing
    sections are created at the end.
    """
    sections = _sections_of(document)
    found = list(found)
    shared = shared_pages([*_article_urls(sections), *(item.article.url for item in found)])
    seen = _known_urls(sections, shared)
    result = Merged()
    upgraded = 0
    for item in found:
        key = identity(item.article.url, shared)
        if key in seen:
            result.skipped.append(Skipped(item.article, f"already in '{seen[key]}'"))
            continue
        title = section or item.section or _last_title(sections) or DEFAULT_SECTION
        target = _find_section(sections, title)
        if target is None:
            layout = (item.layout if section is None else None) or "list"
            if layout == "lead" and any(s.get("layout") == "lead" for s in _mappings(sections)):
                result.notes.append(f"section '{title}' made a list: the issue already has a lead")
                layout = "list"
            target = _new_section(title, layout)
            sections.append(target)
        articles = target.get("articles")
        if not isinstance(articles, CommentedSeq):
            articles = CommentedSeq()
            target["articles"] = articles
        articles.fa.set_block_style()  # `articles: []` from the skeleton must not stay inline
        entry = article_entry(item.article)
        upgraded += entry["url"] != item.article.url
        articles.append(entry)
        seen[key] = str(target.get("title", title))
        result.added.append(Added(str(target.get("title", title)), item.article))
    if upgraded:
        result.notes.append(
            f"{upgraded} http:// link(s) saved as https:// (email clients block plain http);"
            " check that they open"
        )
    return result


def https(url: str) -> str:
    """Email clients warn on or block plain-http links and images; nearly every site serves
    https today, so the saved address is upgraded and the editor told."""
    return "https://" + url[len("http://") :] if url.startswith("http://") else url


def article_entry(article: Article) -> CommentedMap:
    """The YAML mapping for one article, in the order and quoting of the sample issue."""
    entry = CommentedMap()
    entry["title"] = DoubleQuotedScalarString(article.title)
    entry["url"] = https(article.url)
    if article.teaser:
        entry["teaser"] = DoubleQuotedScalarString(article.teaser)
    if article.image:
        image = CommentedMap()
        image["src"] = https(article.image.src)
        image["alt"] = DoubleQuotedScalarString(article.image.alt)
        entry["image"] = image
    if article.author:
        entry["author"] = DoubleQuotedScalarString(article.author)
    if article.date:
        entry["date"] = article.date
    if article.label:
        entry["label"] = DoubleQuotedScalarString(article.label)
    return entry


def _sections_of(document: CommentedMap) -> CommentedSeq:
    sections = document.get("sections")
    if sections is None:
        sections = CommentedSeq()
        document["sections"] = sections
    if not isinstance(sections, CommentedSeq):
        raise IssueFileError(
            "sections: must be a list of sections",
            fix="write `sections:` followed by `- title: ...` entries, or `sections: []`",
        )
    return sections


def _mappings(sections: Sequence[Any]) -> list[CommentedMap]:
    return [s for s in sections if isinstance(s, CommentedMap)]


def _last_title(sections: Sequence[Any]) -> str | None:
    mappings = _mappings(sections)
    return str(mappings[-1].get("title") or "") or None if mappings else None


def _article_urls(sections: Sequence[Any]) -> list[str]:
    return [
        article["url"]
        for section in _mappings(sections)
        for article in section.get("articles") or []
        if isinstance(article, dict) and isinstance(article.get("url"), str)
    ]


def _known_urls(sections: Sequence[Any], shared: set[str]) -> dict[str, str]:
    known: dict[str, str] = {}
    for section in _mappings(sections):
        for article in section.get("articles") or []:
            if isinstance(article, dict) and isinstance(article.get("url"), str):
                known.setdefault(identity(article["url"], shared), str(section.get("title", "")))
    return known


def _find_section(sections: Sequence[Any], title: str) -> CommentedMap | None:
    wanted = title.strip().casefold()
    return next(
        (s for s in _mappings(sections) if str(s.get("title", "")).strip().casefold() == wanted),
        None,
    )


def _new_section(title: str, layout: str) -> CommentedMap:
    section = CommentedMap()
    section["title"] = title
    section["layout"] = layout
    section["articles"] = CommentedSeq()
    return section


# --- editorial hygiene -------------------------------------------------------------------------


@dataclass(frozen=True)
class SentIssue:
    slug: str
    date: dt.date | None
    titles_by_url: dict[str, str]


def recently_sent(issues_dir: Path, sent_slugs: Sequence[str]) -> list[SentIssue]:
    """The issues the ledger says went out (newest first), with the articles they carried."""
    sent: list[SentIssue] = []
    for other in sent_slugs:
        try:
            document = read_document(issues_dir / other / ISSUE_FILE)
        except NewsletterError:
            continue  # a sent issue's file removed or broken is not this command's business
        date = document.get("date") if isinstance(document.get("date"), dt.date) else None
        sent.append(SentIssue(other, date, _known_titles(document)))
    return sent


def _known_titles(document: CommentedMap) -> dict[str, str]:
    titles: dict[str, str] = {}
    for section in _mappings(document.get("sections") or []):
        for article in section.get("articles") or []:
            if isinstance(article, dict) and isinstance(article.get("url"), str):
                titles[canonical_url(article["url"])] = str(article.get("title", ""))
    return titles


def repeat_warnings(added: Iterable[Added], sent: Sequence[SentIssue]) -> list[str]:
    warnings = []
    for item in added:
        key = canonical_url(item.article.url)
        for issue in sent:
            if key in issue.titles_by_url:
                when = f" ({issue.date.isoformat()})" if issue.date else ""
                warnings.append(
                    f"'{item.article.title}' already went out in issue {issue.slug}{when}"
                )
                break
    return warnings


# --- the whole `add` ---------------------------------------------------------------------------


@dataclass
class AddReport:
    path: Path
    added: list[Added] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    repeats: list[str] = field(default_factory=list)
    failures: list[SourceError] = field(default_factory=list)
    written: bool = False


ReadSource = Callable[[str, ReadOptions], Collected]
SentLookup = Callable[[], list[SentIssue]]


def add_to_issue(
    issue_path: Path,
    sources: Sequence[str],
    *,
    options: ReadOptions | None = None,
    section: str | None = None,
    dry_run: bool = False,
    sent: SentLookup | None = None,
    read: ReadSource = read_source,
) -> AddReport:
    """Read every source, merge what was found, save once. A failing source is reported,
    the others still go in; the file is written only when something was added."""
    options = options or ReadOptions()
    document = read_document(issue_path)  # a broken issue file stops us before any download
    report = AddReport(path=issue_path)
    found: list[Found] = []
    for source in sources:
        try:
            collected = read(source, options)
        except SourceError as error:
            report.failures.append(error)
            continue
        except Exception as error:  # a reader bug on one odd page must not cost the others
            report.failures.append(
                SourceError(f"could not be read ({type(error).__name__}: {error})", where=source)
            )
            continue
        report.notes += [f"{source}: {note}" for note in collected.notes]
        if not collected.found:
            report.notes.append(f"{source}: nothing to add")
        found += collected.found
    merged = merge(document, found, section)
    report.added, report.skipped = merged.added, merged.skipped
    report.notes += merged.notes
    if sent is not None and report.added:
        report.repeats = repeat_warnings(report.added, sent())
    if report.added and not dry_run:
        save_document(issue_path, document)
        report.written = True
    return report
