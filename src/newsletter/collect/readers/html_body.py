"""What a reader sees on the page itself: the headline, and what follows it (the first
paragraph, the lead picture, the date line, the byline) — read with lxml, no extractor.

Used where the page's declared metadata is missing or not the article's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from newsletter.collect.readers.dates import parse_date
from newsletter.collect.readers.images import is_tracking_image

HEADING_PATHS = (
    "//h1",
    "//*[@itemprop='headline']",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' entry-title ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' post-title ')]",
    "//h2",
)
HEADLINE_MATCH = 0.6  # share of words a visible heading has in common with the declared title
BODY_PATHS = (
    "//*[@itemprop='articleBody']",
    "//article",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' entry-content ')]",
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' post-content ')]",
)
SCAN_LIMIT = 600  # elements looked at after the headline
MIN_SIDE = 100  # a picture declared smaller than this is an icon, not the article's image
NOT_A_PICTURE = re.compile(
    r"logo|icon|avatar|sprite|button|badge|banner|gravatar|emoji|spinner|loading|placeholder|"
    r"blank|spacer|pixel|share|social|facebook|twitter|pinterest|addthis|gigya|flag|captcha|"
    r"[/_-]ads?[/_.-]|advert|account|profile|teaser|promo",
    re.IGNORECASE,
)
SKIP_TAGS = {"script", "style", "noscript", "nav", "footer", "button", "select", "aside", "header"}
DATE_CLASSES = re.compile(r"date|time|posted|published|meta|byline|dateline", re.IGNORECASE)


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.casefold())


def similarity(heading: str, title: str) -> float:
    """Shared words over the longer of the two texts' word counts."""
    a, b = words(heading), words(title)
    if not a or not b:
        return 0.0
    # "Headline - Site - Section": the heading is the title's first part.
    rest = title.casefold().removeprefix(heading.casefold())
    if rest != title.casefold() and re.match(r"^\s*([-|–—:·»]|$)", rest):
        return 1.0
    shared = len(set(a) & set(b))
    return shared / max(len(set(a)), len(set(b)))


def headline_element(tree: Any, declared: list[str]) -> Any | None:
    """The visible heading that is the declared title (or the best match for one)."""
    best, best_score = None, 0.0
    for path in HEADING_PATHS:
        for element in tree.xpath(path):
            text = squash(element.text_content())
            if not text or len(text) > 300:
                continue
            for title in declared:
                score = similarity(text, title)
                if score > best_score:
                    best, best_score = element, score
    return best if best_score >= HEADLINE_MATCH else None


def squash(text: str) -> str:
    return re.sub(r"[\s\u00a0]+", " ", text).strip()


def _after(tree: Any, start: Any | None, chrome: re.Pattern[str] | None = None) -> Iterator[Any]:
    """Elements in document order after `start` (or inside the article body), skipping chrome."""
    if start is None:
        body = next((found for path in BODY_PATHS for found in tree.xpath(path)), None)
        if body is None:
            return
        shared: set[Any] = {body, *body.iterancestors()}
        elements: Iterator[Any] = body.iter()
    else:
        shared = {start, *start.iterancestors()}
        elements = (e for sibling in _following(start) for e in sibling.iter())
    for count, element in enumerate(elements):
        if count > SCAN_LIMIT:
            return
        if isinstance(element.tag, str) and not _in_chrome(element, shared, chrome or CHROME):
            yield element


def _before(start: Any | None, levels: int = 3, limit: int = 40) -> Iterator[Any]:
    """Elements just before `start` (nearest first), within its closest containers."""
    node, count = start, 0
    for _ in range(levels):
        if node is None:
            return
        for sibling in node.itersiblings(preceding=True):
            for element in reversed(list(sibling.iter())):
                if isinstance(element.tag, str):
                    count += 1
                    if count > limit:
                        return
                    yield element
        node = node.getparent()


def _following(start: Any) -> Iterator[Any]:
    """Following siblings of `start` and of each of its ancestors: what comes after it."""
    node = start
    while node is not None:
        yield from node.itersiblings()
        node = node.getparent()


# Class or id words of boxes that are not the article (matched at the start of a word).
CHROME = re.compile(r"^(comments?|sidebar|related|share|sharing|social|newsletter|widget)", re.I)
# Forum posts and old CMSs keep the text itself in "comment" boxes.
TEXT_CHROME = re.compile(r"^(sidebar|related|share|sharing|social|newsletter|widget)", re.I)


def _in_chrome(element: Any, shared: set[Any], chrome: re.Pattern[str]) -> bool:
    """Inside a box (nav, footer, a sidebar) that does not also hold the headline."""
    for ancestor in (element, *element.iterancestors()):
        if ancestor in shared:
            return False
        if str(ancestor.tag).lower() in SKIP_TAGS:
            return True
        names = f"{ancestor.get('class') or ''} {ancestor.get('id') or ''}"
        if any(chrome.match(word) for word in re.split(r"[\s_]+", names) if word):
            return True
    return False


def paragraphs(
    tree: Any, start: Any | None, limit: int, title: str | None = None, min_length: int = 40
) -> list[str]:
    """The first paragraphs of running text after the headline."""
    found: list[str] = []
    seen_title = (title or "").casefold()
    for element in _after(tree, start, TEXT_CHROME):
        if _in_caption(element):
            continue
        if element.tag == "p" or _is_text_block(element):
            text = squash(element.text_content())
            if len(text) >= min_length and text.casefold() != seen_title and not _is_credit(text):
                found.append(text)
                if len(found) >= limit:
                    break
    return found


def first_paragraph(tree: Any, start: Any | None, title: str | None) -> str | None:
    """The first paragraph of running text after the headline."""
    found = paragraphs(tree, start, 1, title)
    return found[0] if found else None


SUMMARY_CLASSES = re.compile(
    r"(^|[\s_-])(summary|standfirst|excerpt|intro|lead|lede|dek|subtitle|subheadline)"
    r"([\s_-]|$)",
    re.IGNORECASE,
)


def summary_text(tree: Any, start: Any | None) -> str | None:
    """A summary shown right under the headline (p.post-summary, .standfirst, .lead)."""
    if start is None:
        return None
    for count, element in enumerate(_after(tree, start, TEXT_CHROME)):
        if count > 15:
            break
        if (
            element.tag in ("p", "div", "h2")
            and SUMMARY_CLASSES.search(element.get("class") or "")
            and not _in_caption(element)
            and element.find(".//img") is None
        ):
            text = squash(element.text_content())
            if len(text) >= 40:
                return text
    return None


def _in_caption(element: Any) -> bool:
    for ancestor in (element, *element.iterancestors()):
        if ancestor.tag in ("figure", "figcaption") or re.search(
            r"caption|credit", ancestor.get("class") or "", re.I
        ):
            return True
    return False


TEXT_BOX = re.compile(r"text|content|body|message|post|entry", re.IGNORECASE)


def _is_text_block(element: Any) -> bool:
    """A <div> holding a post's text directly (forums, old CMSs), not a layout box."""
    if element.tag != "div" or len(element) > 8 or not TEXT_BOX.search(element.get("class") or ""):
        return False
    return len(squash(element.text or "")) >= 40


def _is_credit(text: str) -> bool:
    return bool(re.match(r"^(photo|foto|bild|image|source|quelle|credit)s?\b", text, re.I))


def lead_image(tree: Any, start: Any | None) -> tuple[str, str] | None:
    """The picture just above the headline (a featured image), else the first one after it."""
    shared = {start, *start.iterancestors()} if start is not None else set()
    above = [e for e in _before(start, levels=2, limit=15) if not _in_chrome(e, shared, CHROME)]
    for element in [*above, *_after(tree, start)]:
        if element.tag != "img":
            continue
        src = _image_source(element)
        if src and _is_picture(element, src):
            return src, squash(element.get("alt") or "")
    return None


def _image_source(img: Any) -> str | None:
    for attribute in ("data-src", "data-lazy-src", "data-original", "src"):
        value = (img.get(attribute) or "").strip()
        if value and not value.startswith("data:"):
            return value
    return None


def _is_picture(img: Any, src: str) -> bool:
    width, height = img.get("width"), img.get("height")
    if is_tracking_image(src, width, height) or too_small(width) or too_small(height):
        return False
    described = " ".join((src, img.get("class") or "", img.get("alt") or "", img.get("id") or ""))
    return not NOT_A_PICTURE.search(described)


def too_small(value: object) -> bool:
    match = re.match(r"^\s*(\d+)\s*(px)?\s*$", str(value or ""))
    return match is not None and int(match.group(1)) < MIN_SIDE


def is_generic_image(src: str, site_labels: set[str]) -> bool:
    """A site's logo or default share picture rather than the article's own."""
    path = src.split("?", 1)[0].casefold()
    name = path.rsplit("/", 1)[-1]
    if re.search(r"logo|icon|favicon|default|placeholder|sprite|avatar", name):
        return True
    # Site-wide asset folders: /common/, /structured-data/, /themes/, /designs/
    if re.search(r"/(common|structured-data|themes?|designs?|layout)/", path):
        return True
    return any(len(label) >= 4 and name.startswith(label) for label in site_labels)


def visible_date(tree: Any, start: Any | None, language: str | None) -> Any:
    """The date line next to the headline: a <time>, a date/byline box, or a short line that is
    a date, looked for just before the headline and then after it."""
    nearby = list(_before(start)) if start is not None else []
    for position, element in enumerate([*nearby, *_after(tree, start, TEXT_CHROME)]):
        stamp = element.get("datetime") if element.tag == "time" else None
        if stamp and (found := parse_date(stamp, language)):
            return found
        dated = DATE_CLASSES.search(f"{element.get('class') or ''} {element.get('title') or ''}")
        if dated or element.tag == "time" or position < len(nearby) + 25:
            for text in (element.get("title"), squash(" ".join(element.itertext()))):
                if text and len(text) <= 120 and (found := parse_date(text, language)):
                    return found
    return None
