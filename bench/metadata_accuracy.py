"""Per-field accuracy of `newsletter add`'s metadata on the shared fixtures, beside its peers.

Pages: ours (newsletter.collect.readers.html.page_metadata) vs trafilatura.extract_metadata.
Feeds: ours (newsletter.collect.readers.feed.feed_items) vs feedparser used directly.
Expected values: bench/expected_metadata.json, recorded by reading the raw files.

    python bench/metadata_accuracy.py [--shared ../shared] [--details]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

FIELDS = ("title", "teaser", "image", "url", "date", "author")
TEASER_PREFIX = 100
HERE = Path(__file__).resolve().parent
Record = dict[str, Any]


# --- comparison ---------------------------------------------------------------------------------


def text(value: Any) -> str:
    """Text of a value as a reader sees it: tags dropped, entities decoded, spaces squashed."""
    if value is None:
        return ""
    value = unescape(re.sub(r"<[^>]+>", " ", str(value)))
    return re.sub(r"[\s\u00a0]+", " ", value).strip()


def names(value: Any) -> set[str]:
    parts = re.split(r"\s*(?:[,;&]|\band\b)\s*", text(value).casefold().replace(".", ""))
    return {re.sub(r"\s+", " ", part).strip() for part in parts if part.strip()}


def as_date(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, time.struct_time):
        return dt.date(value.tm_year, value.tm_mon, value.tm_mday).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)[:10]


def correct(field: str, got: Any, expected: Any) -> bool:
    if field == "date":
        return as_date(got) == as_date(expected)
    if field == "author":
        return names(got) == names(expected)
    got_text, expected_text = text(got), text(expected)
    if field == "title":
        return got_text.casefold() == expected_text.casefold()
    if field == "teaser":
        got_text, expected_text = got_text.rstrip(".…"), expected_text.rstrip(".…")
        n = min(len(expected_text), TEASER_PREFIX)
        return got_text[:n] == expected_text[:n] and (n > 0 or not got_text)
    return got_text == expected_text  # image, url: the exact address


# --- the tools ----------------------------------------------------------------------------------


def ours_page(raw: bytes, url: str | None) -> Record:
    from newsletter.collect.readers.decode import decode
    from newsletter.collect.readers.html import page_metadata

    meta = page_metadata(decode(raw), url)
    return {field: getattr(meta, field) for field in FIELDS}


def trafilatura_page(raw: bytes, url: str | None) -> Record:
    import trafilatura

    meta = trafilatura.extract_metadata(raw.decode("utf-8", errors="replace"), default_url=url)
    if meta is None:
        return dict.fromkeys(FIELDS)
    return {
        "title": meta.title,
        "teaser": meta.description,
        "image": meta.image,
        "url": meta.url,
        "date": meta.date,
        "author": meta.author,
    }


def ours_feed(raw: bytes, url: str | None, name: str) -> list[Record]:
    from newsletter.collect.readers.base import Document
    from newsletter.collect.readers.feed import feed_items

    items, _ = feed_items(Document(location=name, content=raw, base_url=url))
    return [{field: getattr(item, field) for field in FIELDS} for item in items]


def feedparser_feed(raw: bytes, url: str | None, name: str) -> list[Record]:
    import feedparser

    headers = {"content-location": url} if url else {}
    parsed = feedparser.parse(raw, response_headers=headers)
    records = []
    for entry in parsed.entries:
        # Generous: the documented image fields, in the order a caller would try them.
        images = [m.get("url") for m in entry.get("media_thumbnail") or []]
        images += [m.get("url") for m in entry.get("media_content") or []]
        images += [e.get("href") for e in entry.get("enclosures") or []]
        records.append(
            {
                "title": entry.get("title"),
                "teaser": entry.get("summary"),
                "image": next((i for i in images if i), None),
                "url": entry.get("link"),
                "date": entry.get("published_parsed") or entry.get("updated_parsed"),
                "author": entry.get("author"),
            }
        )
    return records


def matching(records: list[Record], expected: Record, index: int) -> Record:
    """The tool's record for an expected item: same address, else same title, else position."""
    for key in ("url", "title"):
        if expected.get(key):
            for record in records:
                if text(record.get(key)) == text(expected[key]):
                    return record
    return records[index] if index < len(records) else dict.fromkeys(FIELDS)


def guarded(nothing: Any, tool: Callable[..., Any], *args: Any) -> Any:
    """A tool that refuses an input (raises) gave nothing for it."""
    try:
        return tool(*args)
    except Exception as error:
        print(f"  ({tool.__name__} refused {args[-1] if len(args) > 2 else ''}: {error!r:.120})")
        return nothing


# --- scoring --------------------------------------------------------------------------------------


@dataclass
class Tally:
    right: dict[str, int]
    total: int = 0

    @classmethod
    def new(cls) -> Tally:
        return cls(right=dict.fromkeys(FIELDS, 0))

    def add(self, got: Record, expected: Record, misses: list[str], label: str) -> None:
        self.total += 1
        for field in FIELDS:
            if correct(field, got.get(field), expected.get(field)):
                self.right[field] += 1
            else:
                misses.append(
                    f"{label} {field}: got {got.get(field)!r}, expected {expected.get(field)!r}"
                )


def run(shared: Path) -> tuple[dict[str, Tally], dict[str, list[str]], float]:
    spec = json.loads((HERE / "expected_metadata.json").read_text(encoding="utf-8"))
    fixtures = shared / "fixtures"
    tallies = {
        name: Tally.new() for name in ("ours/pages", "trafilatura", "ours/feeds", "feedparser")
    }
    misses: dict[str, list[str]] = {name: [] for name in tallies}
    started = time.perf_counter()
    for page in spec["pages"]:
        raw = (fixtures / page["file"]).read_bytes()
        url = page.get("url_hint")
        for name, tool in (("ours/pages", ours_page), ("trafilatura", trafilatura_page)):
            record = guarded(dict.fromkeys(FIELDS), tool, raw, url)
            tallies[name].add(record, page["expected"], misses[name], page["file"])
    for feed in spec["feeds"]:
        raw = (fixtures / feed["file"]).read_bytes()
        url = feed.get("url_hint")
        tools: tuple[tuple[str, Callable[..., list[Record]]], ...] = (
            ("ours/feeds", ours_feed),
            ("feedparser", feedparser_feed),
        )
        # A feed with no items (not a feed at all) counts as one item whose fields are all null.
        expected_items = feed["items"] or [dict.fromkeys(FIELDS)]
        for name, feed_tool in tools:
            records = guarded([], feed_tool, raw, url, feed["file"])
            for index, expected in enumerate(expected_items):
                label = f"{feed['file']}#{index + 1}"
                tallies[name].add(matching(records, expected, index), expected, misses[name], label)
    return tallies, misses, time.perf_counter() - started


def table(tallies: dict[str, Tally]) -> str:
    def cell(tally: Tally, field: str) -> str:
        return f"{tally.right[field]}/{tally.total}"

    pages, traf = tallies["ours/pages"], tallies["trafilatura"]
    feeds, fp = tallies["ours/feeds"], tallies["feedparser"]
    header = (
        "| field | ours, pages | trafilatura | ours, feeds | feedparser | ours, all | peers, all |"
        "\n|---|---|---|---|---|---|---|\n"
    )
    rows = []
    for field in FIELDS:
        ours_all = pages.right[field] + feeds.right[field]
        peers_all = traf.right[field] + fp.right[field]
        total = pages.total + feeds.total
        ours_share, peers_share = 100 * ours_all / total, 100 * peers_all / total
        rows.append(
            f"| {field} | {cell(pages, field)} | {cell(traf, field)} | {cell(feeds, field)} "
            f"| {cell(fp, field)} | {ours_share:.0f}% | {peers_share:.0f}% |"
        )
    return header + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    parser.add_argument("--details", action="store_true", help="list every miss")
    args = parser.parse_args(argv)
    tallies, misses, seconds = run(args.shared)
    pages, feeds = tallies["ours/pages"].total, tallies["ours/feeds"].total
    print(f"{pages} pages, {feeds} feed items from {args.shared / 'fixtures'} ({seconds:.1f} s)\n")
    print(table(tallies))
    if args.details:
        for name, lines in misses.items():
            print(f"\n{name}: {len(lines)} misses")
            for line in lines:
                print(f"  {line[:220]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
