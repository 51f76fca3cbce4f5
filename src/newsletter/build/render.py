"""Issue -> MJML (Jinja2) -> HTML (mjml-python) -> inlined HTML (premailer); text; web version."""

from __future__ import annotations

import datetime as dt
import re
import textwrap
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import jinja2
from markupsafe import Markup

from newsletter.build.compact import compact_html
from newsletter.build.finish import finish_html
from newsletter.build.inline import inline_css
from newsletter.build.mjml_tags import ascii_attributes, find_unknown_tags
from newsletter.build.sanitize import sanitize_fragment, to_text
from newsletter.build.template_cache import compiled_templates
from newsletter.config import Settings
from newsletter.errors import TemplateError
from newsletter.issue.model import Article, Issue
from newsletter.merge_tags import MERGE_TAGS, is_merge_tag, neutralise_markers

TEXT_WIDTH = 76


@dataclass
class Rendered:
    email_html: str
    web_html: str
    text: str
    mjml: str
    stage_seconds: dict[str, float] = field(default_factory=dict)


class _Stopwatch:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start


def render_issue(issue: Issue, slug: str, settings: Settings) -> Rendered:
    environment = template_environment(settings, slug)
    template_name = settings.file.newsletter.template
    watch = _Stopwatch()
    with watch.stage("template"):
        base = _context(issue, slug, settings)
        email_mjml = _render(environment, f"{template_name}.mjml.j2", {**base, "web": False})
        web_mjml = _render(environment, f"{template_name}.mjml.j2", {**base, "web": True})
        _validate_mjml(email_mjml, template_name)
    with watch.stage("mjml"):
        email_raw = _mjml_to_html(email_mjml, template_name)
        web_raw = _mjml_to_html(web_mjml, template_name)
    with watch.stage("inline"):
        email_html = compact_html(finish_html(inline_css(email_raw)))
        web_html = compact_html(finish_html(inline_css(web_raw)))
    with watch.stage("text"):
        text = _render(environment, f"{template_name}.txt.j2", {**base, "web": False})
        text = _normalise_text(unicodedata.normalize("NFC", text))
    return Rendered(email_html, web_html, text, email_mjml, watch.seconds)


def template_environment(settings: Settings, slug: str) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    workspace_templates = settings.path("templates")
    if workspace_templates.is_dir():
        loaders.append(jinja2.FileSystemLoader(workspace_templates))
    loaders.append(jinja2.PackageLoader("newsletter", "templates"))
    environment = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        bytecode_cache=compiled_templates(),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=_inert_content,
    )
    environment.filters.update(_filters(settings, slug))
    return environment


def _inert_content(value: Any) -> Any:
    """Every value a template prints: content can never become a template or merge tag."""
    if isinstance(value, Markup):
        return Markup(neutralise_markers(str(value)))
    if isinstance(value, str) and not is_merge_tag(value):
        return neutralise_markers(value)
    return value


def _filters(settings: Settings, slug: str) -> dict[str, Callable[..., Any]]:
    links = settings.file.links
    utm = {
        "utm_source": links.utm_source,
        "utm_medium": links.utm_medium,
        "utm_campaign": links.utm_campaign.format(slug=slug) if links.utm_campaign else None,
    }
    utm_params = {key: value for key, value in utm.items() if value}

    def track(url: str) -> str:
        return add_query_params(url, utm_params)

    def rich(text: str) -> Markup:
        return Markup(sanitize_fragment(text))

    def plain(text: str) -> str:
        return to_text(text)

    return {
        "track": track,
        "rich": rich,
        "plain": plain,
        "wrap": wrap,
        "longdate": long_date,
        "byline_text": byline_text,
    }


def add_query_params(url: str, params: dict[str, str]) -> str:
    """Add tracking parameters the URL does not already set; keep its own order and fragment."""
    if not params or not url.startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    existing = parse_qsl(parts.query, keep_blank_values=True)
    names = {name for name, _ in existing}
    added = [(name, value) for name, value in params.items() if name not in names]
    return urlunsplit(parts._replace(query=urlencode(existing + added)))


def long_date(value: dt.date) -> str:
    return f"{value.day} {value:%B} {value.year}"


def byline_text(article: Article) -> str:
    parts = []
    if article.author:
        parts.append(f"By {article.author}")
    if article.date:
        parts.append(long_date(article.date))
    return " · ".join(parts)


def wrap(text: str, width: int = TEXT_WIDTH) -> str:
    """Wrap paragraphs for the text part; URLs and long words are never broken."""
    paragraphs = re.split(r"\n\s*\n", str(text).strip())
    return "\n\n".join(
        textwrap.fill(
            " ".join(paragraph.split()),
            width=width,
            break_long_words=False,
            break_on_hyphens=False,
        )
        for paragraph in paragraphs
    )


def _context(issue: Issue, slug: str, settings: Settings) -> dict[str, Any]:
    web_base = settings.file.newsletter.web_base_url.rstrip("/")
    return {
        "issue": issue,
        "slug": slug,
        "newsletter": settings.file.newsletter,
        "sender": settings.file.sender,
        "brand": settings.file.brand,
        "language": settings.file.newsletter.language,
        "web_url": f"{web_base}/{slug}/",
        "merge": MERGE_TAGS,
    }


def _render(environment: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    try:
        return environment.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(
            f"template {exc.name!r} not found",
            where=f"templates/{exc.name}",
            fix="create it, or remove the workspace override so the built-in one is used",
        ) from None
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"template syntax error: {exc.message}",
            where=f"templates/{exc.name or name}:{exc.lineno}",
            fix="correct the Jinja2 tag at that line",
        ) from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(
            f"template uses an undefined value: {exc.message}",
            where=f"templates/{_failing_template(exc) or name}",
            fix="check the variable name against the issue fields and settings",
        ) from None
    except jinja2.TemplateError as exc:
        raise TemplateError(
            f"template failed: {exc}", where=f"templates/{name}", fix="correct the template"
        ) from None
    except UnicodeDecodeError as exc:
        raise TemplateError(
            f"a template is not UTF-8 text (byte {exc.start})",
            where=f"templates/{name} (or a template it includes)",
            fix="save the template as UTF-8",
        ) from None


def _failing_template(exc: BaseException) -> str | None:
    tb = exc.__traceback__
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{Path(filename).name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _validate_mjml(source: str, template_name: str) -> None:
    # mjml-python copies unknown <mj-*> tags through silently, so catch them here.
    for tag, line in find_unknown_tags(source):
        raise TemplateError(
            f"unknown MJML tag <{tag}> at line {line} of the rendered MJML",
            where=f"templates/{template_name}.mjml.j2 (or a partial)",
            fix="use a tag from https://documentation.mjml.io or mj-raw for plain HTML",
        )
    if "{{" in source or "{%" in source:
        line = source[: source.find("{{" if "{{" in source else "{%")].count("\n") + 1
        raise TemplateError(
            f"template output contains an unrendered Jinja2 tag at line {line}",
            where=f"templates/{template_name}.mjml.j2",
            fix="escape literal braces with {{ '{{' }} or fix the tag",
        )


def _mjml_to_html(source: str, template_name: str) -> str:
    from mjml import mjml2html

    try:
        # fonts={} stops MJML adding a Google Fonts <link>: no external stylesheets in email.
        return str(mjml2html(ascii_attributes(source), disable_comments=True, fonts={}))
    except ValueError as exc:
        raise TemplateError(
            f"MJML could not be compiled: {exc}",
            where=f"templates/{template_name}.mjml.j2",
            fix="check that every <mj-*> tag is closed and correctly nested",
        ) from None


def _normalise_text(text: str) -> str:
    lines = [line.rstrip() for line in text.splitlines()]
    collapsed = re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines)).strip("\n")
    return collapsed + "\n"
