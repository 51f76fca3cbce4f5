"""The static report page build/<slug>/preview.html, and the views it shares with the live preview.

One set of views (email at several widths, dark mode, text part, HTML source, headers,
size, checks) serves both the static page written with every build, which needs no
server, and the live page that preview/ serves on 127.0.0.1.
"""

from __future__ import annotations

import re
from email.headerregistry import Address
from typing import Any, Literal

import jinja2

from newsletter.build.checks import GMAIL_CLIP_BYTES, SIZE_WARNING_BYTES
from newsletter.build.result import Build
from newsletter.build.template_cache import compiled_templates
from newsletter.config import Settings
from newsletter.list_headers import ONE_CLICK, list_unsubscribe
from newsletter.merge_tags import fill

WIDTHS = {"wide": 800, "desktop": 600, "mobile": 375}
# What one subscriber would see; the .invalid domain can never resolve, so no click is real.
SAMPLE_VALUES = {
    "first_name": "Alex",
    "email": "alex@example.com",
    "unsubscribe_url": "https://unsubscribe.example.invalid/preview-only",
}

Scheme = Literal["light", "dark"]


def for_subscriber(html: str) -> str:
    """The email as the sample subscriber gets it: merge tags filled with SAMPLE_VALUES."""
    return fill(html, SAMPLE_VALUES)


_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.IGNORECASE | re.DOTALL)
_SCHEME_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_ALWAYS, _NEVER = "(min-width: 0px)", "(max-width: 0px)"


def emulate_color_scheme(html: str, scheme: Scheme) -> str:
    """The email as a client in light or dark mode that honours the email's own CSS renders it.

    An iframe cannot be given its own prefers-color-scheme, and it inherits the editor's
    system setting. So the email's `(prefers-color-scheme: ...)` queries are rewritten to
    always or never match, and `color-scheme` is forced so unstyled parts get the matching
    canvas. This is what Apple Mail, iOS Mail and Outlook for Mac do with dark CSS; Gmail's
    and Outlook's apps invert colours by their own rules, which this does not emulate.
    """

    def switch(match: re.Match[str]) -> str:
        return _ALWAYS if match.group(1).lower() == scheme else _NEVER

    html = _STYLE_BLOCK.sub(lambda block: _SCHEME_QUERY.sub(switch, block.group(0)), html)
    # <base target=_blank>: a click opens a tab instead of replacing the frame's content.
    head = (
        f'<base target="_blank"><meta name="color-scheme" content="{scheme}">'
        f"<style>:root {{ color-scheme: {scheme} !important; }}</style>"
    )
    found = _HEAD_END.search(html)
    if found is None:
        return head + html
    return html[: found.start()] + head + html[found.start() :]


def sample_headers(settings: Settings, build: Build) -> list[tuple[str, str]]:
    """The headers a subscriber's client shows, with the sample subscriber's values."""
    sender = settings.file.sender
    rows = [
        ("From", str(Address(sender.name, addr_spec=sender.email))),
        ("Reply-To", sender.reply_to or ""),
        ("To", str(Address(SAMPLE_VALUES["first_name"], addr_spec=SAMPLE_VALUES["email"]))),
        ("Subject", build.issue.subject),
        ("Preheader", build.issue.preheader),
        ("List-Unsubscribe", list_unsubscribe(SAMPLE_VALUES["unsubscribe_url"])),
        ("List-Unsubscribe-Post", ONE_CLICK),
    ]
    return [(name, value) for name, value in rows if value]


def size_summary(build: Build) -> dict[str, Any]:
    size = len(build.rendered.email_html.encode("utf-8"))
    level = (
        "error" if size >= GMAIL_CLIP_BYTES else "warning" if size >= SIZE_WARNING_BYTES else "ok"
    )
    return {
        "bytes": size,
        "text_bytes": len(build.rendered.text.encode("utf-8")),
        "limit": GMAIL_CLIP_BYTES,
        "warning": SIZE_WARNING_BYTES,
        "percent": round(100 * size / GMAIL_CLIP_BYTES, 1),
        "level": level,
    }


def page_views(settings: Settings, build: Build) -> dict[str, Any]:
    """Everything both pages (static report and live preview) show about one build."""
    email = for_subscriber(build.rendered.email_html)
    return {
        "slug": build.slug,
        "newsletter": settings.file.newsletter.name,
        "subject": build.issue.subject,
        "date": build.issue.date,
        "light_html": emulate_color_scheme(email, "light"),
        "dark_html": emulate_color_scheme(email, "dark"),
        "source_html": build.rendered.email_html,
        "text": for_subscriber(build.rendered.text),
        "headers": sample_headers(settings, build),
        "size": size_summary(build),
        "findings": build.findings,
        "ok": build.ok,
        "sample": SAMPLE_VALUES,
        "widths": WIDTHS,
    }


def pages() -> jinja2.Environment:
    """The preview page templates (templates/preview: the report and the live page)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "templates/preview"),
        bytecode_cache=compiled_templates(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_preview_report(settings: Settings, build: Build) -> str:
    """The static report: all views on one page, no server and no external CSS or script.

    No timestamp: the same build gives the same file, like the other build outputs.
    """
    return pages().get_template("report.html.j2").render(page_views(settings, build))
