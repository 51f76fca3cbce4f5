"""Plain-text page dumps: a headline, paragraphs, then the site's teaser lists.

The dump has no addresses, so every article gets `placeholder_url(title)`: re-adding the
same dump finds the same URLs and dedupes. `--url` is the dumped page's own address, so the
headline story gets it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from newsletter.collect.readers.base import Document, Found, Reader, cut_teaser, make_article
from newsletter.errors import SourceError
from newsletter.issue.placeholders import placeholder_url

LEAD_SECTION = "Top story"
# Page furniture that is never content, whatever the site.
NOISE = re.compile(
    r"^(-\s*)?(advertisement|advertisment|sponsored|subscribe( to our newsletter)?|"
    r"sign up( for our newsletter)?|share( this( article)?)?|read more|related|comments?)"
    r"(\s*-)?$",
    re.IGNORECASE,
)
ENDS_WITH_ELLIPSIS = re.compile(r"(\.\.\.|…)\s*$")
HEADING_MAX = 40


@dataclass
class TeaserList:
    heading: str
    items: list[tuple[str, str]] = field(default_factory=list)


class TextReader(Reader):
    name = "text"
    suffixes = (".txt", ".text")
    # No content type: servers label all sorts of things text/plain, so those are sniffed.

    def read(self, document: Document) -> list[Found]:
        blocks = [_one_line(b) for b in re.split(r"\n\s*\n", document.text())]
        blocks = [block for block in blocks if block and not NOISE.match(block)]
        if not blocks:
            raise SourceError(
                "no text found", where=document.location, fix="give a page dump with a headline"
            )
        headline, rest = blocks[0], blocks[1:]
        body_end = next((i for i in range(len(rest)) if _starts_list(rest, i)), len(rest))
        paragraphs, lists = rest[:body_end], _teaser_lists(rest[body_end:])
        found = _found(document, headline, paragraphs, lists, self.options.url)
        if self.options.url and len(found) > 1:
            self.notes.append(
                f"--url is the address of the headline story; the other {len(found) - 1}"
                " got placeholder addresses (the dump does not give theirs)"
            )
        return found


def _one_line(block: str) -> str:
    # Only line breaks go: the editor's sample keeps the page's own spacing inside a line.
    return " ".join(line.strip() for line in block.strip().splitlines())


def _starts_list(blocks: list[str], index: int) -> bool:
    """A short unpunctuated line followed by a title and an ellipsis-ended teaser."""
    heading = blocks[index]
    return (
        len(heading) <= HEADING_MAX
        and not re.search(r"[.!?:;,\"”’)]$", heading)
        and index + 2 < len(blocks)
        and bool(ENDS_WITH_ELLIPSIS.search(blocks[index + 2]))
        and not ENDS_WITH_ELLIPSIS.search(blocks[index + 1])
    )


def _teaser_lists(blocks: list[str]) -> list[TeaserList]:
    lists: list[TeaserList] = []
    index = 0
    while index < len(blocks):
        if _starts_list(blocks, index) or not lists:
            lists.append(TeaserList(heading=blocks[index]))
            index += 1
            continue
        title = blocks[index]
        has_teaser = index + 1 < len(blocks) and bool(ENDS_WITH_ELLIPSIS.search(blocks[index + 1]))
        teaser = blocks[index + 1] if has_teaser else ""
        lists[-1].items.append((title, teaser))
        index += 2 if has_teaser else 1
    return lists


def _found(
    document: Document,
    headline: str,
    paragraphs: list[str],
    lists: list[TeaserList],
    lead_url: str | None = None,
) -> list[Found]:
    """Each title once (first list wins), with the longest teaser the page shows for it."""
    longest: dict[str, str] = {}
    for teaser_list in lists:
        for title, teaser in teaser_list.items:
            if len(teaser) > len(longest.get(title, "")):
                longest[title] = teaser
    lead_teaser = cut_teaser(paragraphs[0]) if paragraphs else ""
    # --url is the address of the dumped page, i.e. of its headline story; the teaser lists
    # name other articles whose addresses the dump does not give.
    found = [_article(document, headline, lead_teaser, LEAD_SECTION, "lead", lead_url)]
    seen = {headline}
    for position, teaser_list in enumerate(lists):
        layout = "list" if position == 0 else "grid"
        for title, _ in teaser_list.items:
            if title in seen:
                continue
            seen.add(title)
            found.append(_article(document, title, longest[title], teaser_list.heading, layout))
    return found


def _article(
    document: Document,
    title: str,
    teaser: str,
    section: str,
    layout: str,
    url: str | None = None,
) -> Found:
    url = url or placeholder_url(title)
    article = make_article(document.location, {"title": title, "url": url, "teaser": teaser})
    return Found(article=article, section=section, layout=layout)
