"""The quality bar for a built email: pure functions from a build to findings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Literal

from lxml import html as lxml_html

from newsletter.build.finish import preheader_text
from newsletter.build.outlook import width_problems
from newsletter.issue.model import Issue
from newsletter.issue.placeholders import is_placeholder
from newsletter.merge_tags import MERGE_TAGS, is_merge_tag

GMAIL_CLIP_BYTES = 102_000
SIZE_WARNING_BYTES = 90_000
MAX_WIDTH_PX = 600
PREHEADER_MIN, PREHEADER_MAX = 35, 140
MAX_LINE_OCTETS = 998
RUST_ESCAPE = "\\u{"
# What a client reads from <head>: (meta name, what it is for).
CLIENT_METAS = (
    ("color-scheme", "dark mode in Apple Mail"),
    ("supported-color-schemes", "dark mode in older Apple Mail"),
    ("x-apple-disable-message-reformatting", "Apple Mail would rescale the layout"),
    ("format-detection", "iOS would turn dates and numbers into links"),
)

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    level: Level
    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class BuiltEmail:
    """What the checks look at: the outputs of one build and the issue they came from."""

    email_html: str
    text: str
    issue: Issue
    tracked_urls: tuple[str, ...]
    mjml: str = ""


Check = Callable[[BuiltEmail, "lxml_html.HtmlElement"], Iterator[Finding]]
_CHECKS: list[Check] = []


def check(function: Check) -> Check:
    _CHECKS.append(function)
    return function


def run_checks(built: BuiltEmail) -> list[Finding]:
    document = lxml_html.document_fromstring(built.email_html.encode("utf-8"))
    return [finding for check_function in _CHECKS for finding in check_function(built, document)]


def errors(findings: Iterable[Finding]) -> list[Finding]:
    return [finding for finding in findings if finding.level == "error"]


def _error(code: str, message: str) -> Finding:
    return Finding("error", code, message)


def _warning(code: str, message: str) -> Finding:
    return Finding("warning", code, message)


@check
def size(built: BuiltEmail, _: lxml_html.HtmlElement) -> Iterator[Finding]:
    size = len(built.email_html.encode("utf-8"))
    if size >= GMAIL_CLIP_BYTES:
        yield _error(
            "size",
            f"email.html is {size:,} bytes; Gmail clips messages from {GMAIL_CLIP_BYTES:,} "
            "— remove stories or shorten teasers",
        )
    elif size >= SIZE_WARNING_BYTES:
        yield _warning(
            "size",
            f"email.html is {size:,} bytes, close to Gmail's clip limit of {GMAIL_CLIP_BYTES:,}",
        )


@check
def document_head(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    if not re.match(r"\s*<!doctype html", built.email_html, re.IGNORECASE):
        yield _error("doctype", "email.html has no <!doctype html>")
    if not document.get("lang"):
        yield _error("lang", "<html> has no lang attribute — set [newsletter] language")
    metas = document.xpath("//meta")
    if not any(
        meta.get("charset") or "charset" in (meta.get("content") or "").lower() for meta in metas
    ):
        yield _error("charset", "no <meta> declares the character set")
    if not any((meta.get("name") or "").lower() == "viewport" for meta in metas):
        yield _error("viewport", "no <meta name=viewport>: phones will zoom out")
    names = {(meta.get("name") or "").lower() for meta in metas}
    for name, purpose in CLIENT_METAS:
        if name not in names:
            yield _error("head-meta", f"no <meta name={name}> in <head> ({purpose})")
    titles = document.xpath("//head/title")
    if not titles or not (titles[0].text_content() or "").strip():
        yield _error("title", "the <title> is missing or empty")


@check
def preheader(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    body = document.find("body")
    first = next(iter(body.iterchildren("div")), None) if body is not None else None
    style = (first.get("style") or "").replace(" ", "") if first is not None else ""
    if first is None or "display:none" not in style:
        yield _error("preheader", "no hidden preheader at the top of the body")
        return
    if "mso-hide:all" not in style:
        yield _error("preheader", "the preheader lacks mso-hide:all: Outlook shows it")
    length = len(preheader_text(first.text_content()))
    if not PREHEADER_MIN <= length <= PREHEADER_MAX:
        yield _error(
            "preheader",
            f"the preheader is {length} characters; inboxes show {PREHEADER_MIN}-"
            f"{PREHEADER_MAX} — rewrite `preheader` in issue.yaml",
        )


@check
def images(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    for image in document.iter("img"):
        src = image.get("src") or ""
        if image.get("alt") is None:
            yield _error("alt", f"image {src} has no alt text")
        if not src.startswith("https://"):
            yield _error("image-url", f"image {src!r} is not an absolute https URL")
        width = image.get("width") or ""
        if width.isdigit() and int(width) > MAX_WIDTH_PX:
            yield _error("width", f"image {src} is {width}px wide; the email is {MAX_WIDTH_PX}px")


@check
def tables(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    missing = [t for t in document.iter("table") if t.get("role") != "presentation"]
    if missing:
        yield _error(
            "table-role",
            f'{len(missing)} layout table(s) lack role="presentation" (screen readers)',
        )
    for table in document.iter("table"):
        width = (table.get("width") or "").removesuffix("px")
        if width.isdigit() and int(width) > MAX_WIDTH_PX:
            yield _error("width", f"a table is {width}px wide; the limit is {MAX_WIDTH_PX}px")


@check
def outlook_widths(built: BuiltEmail, _: lxml_html.HtmlElement) -> Iterator[Finding]:
    problems = width_problems(built.email_html)
    for problem in dict.fromkeys(problems):
        count = problems.count(problem)
        yield _error("outlook-width", problem + (f" ({count} times)" if count > 1 else ""))


@check
def unsafe_content(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    if document.xpath("//script"):
        yield _error("script", "the email contains a <script> element")
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            if name.lower().startswith("on"):
                yield _error("event-handler", f"<{element.tag} {name}=...> event handler")
            if value.strip().lower().startswith(("javascript:", "vbscript:", "data:text")):
                yield _error("javascript-url", f"<{element.tag} {name}> uses a script URL")
    for link in document.xpath("//link[@rel]"):
        if "stylesheet" in link.get("rel", "").lower():
            yield _error("external-css", f"external stylesheet {link.get('href')}")
    styles = "\n".join(style.text_content() for style in document.iter("style"))
    if "@import" in styles:
        yield _error("external-css", "a <style> block uses @import")


@check
def links(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    for anchor in document.iter("a"):
        href = (anchor.get("href") or "").strip()
        if is_merge_tag(href) or href.startswith("mailto:"):
            continue
        if not href.startswith("https://"):
            yield _error(
                "link",
                f"link {href!r} is not an absolute https URL — use the https:// address "
                "in issue.yaml",
            )
    placeholders = [a.url for a in built.issue.articles() if is_placeholder(a.url)]
    if placeholders:
        yield _warning(
            "placeholder",
            f"{len(placeholders)} article link(s) are example.org placeholders, e.g. "
            f"{placeholders[0]} — replace them with the real addresses before sending",
        )


@check
def responsive_css(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    styles = [style.text_content() for style in document.iter("style")]
    media = [style for style in styles if "@media" in style]
    if not media:
        yield _error("media-query", "no @media rules left in <style>: the mobile layout is lost")
    elif not any("!important" in style for style in media):
        yield _error("media-query", "@media rules lost their !important: mobile layout breaks")
    if "<!--[if mso" not in built.email_html:
        yield _error("outlook", "no Outlook conditional comment (<!--[if mso ...]>)")
    for match in re.finditer(r"max-width:\s*(\d+)px", built.email_html):
        if int(match.group(1)) > MAX_WIDTH_PX:
            yield _error("width", f"max-width {match.group(1)}px exceeds {MAX_WIDTH_PX}px")
            break


@check
def leftovers(built: BuiltEmail, _: lxml_html.HtmlElement) -> Iterator[Finding]:
    if "<mj-" in built.email_html:
        yield _error("leftover", "an <mj-...> tag was not compiled")
    for name, text in (("email.html", built.email_html), ("email.txt", built.text)):
        if "{{" in text or "{%" in text:
            yield _error("leftover", f"{name} contains an unrendered template tag")
    # mjml-python's Rust escapes of attribute characters; only those the content did not
    # itself contain count.
    escapes = built.email_html.count(RUST_ESCAPE) - built.mjml.count(RUST_ESCAPE)
    if escapes > 0:
        yield _error(
            "escape",
            f"email.html contains {escapes} literal {RUST_ESCAPE}...}} escape(s) from MJML: "
            "a character in an attribute was not encoded",
        )


@check
def text_part(built: BuiltEmail, _: lxml_html.HtmlElement) -> Iterator[Finding]:
    text = built.text
    if re.search(r"</?[a-zA-Z][a-zA-Z0-9]*(\s[^>]*)?>", text):
        yield _error("text-tags", "email.txt contains HTML tags")
    for url in built.tracked_urls:
        if url not in text:
            yield _error("text-link", f"email.txt lacks the link {url}")
    if MERGE_TAGS["unsubscribe_url"] not in text:
        yield _error("text-unsubscribe", "email.txt has no unsubscribe link")
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line.encode("utf-8")) > MAX_LINE_OCTETS:
            yield _error("text-line", f"email.txt line {number} exceeds {MAX_LINE_OCTETS} octets")


@check
def unsubscribe_link(built: BuiltEmail, document: lxml_html.HtmlElement) -> Iterator[Finding]:
    hrefs = {anchor.get("href") for anchor in document.iter("a")}
    if MERGE_TAGS["unsubscribe_url"] not in hrefs:
        yield _error("unsubscribe", "the email has no visible unsubscribe link")
