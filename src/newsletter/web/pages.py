"""HTML pages of the reader's side, from autoescaped Jinja2 templates."""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from starlette.responses import HTMLResponse

from newsletter.config import Settings

NO_STORE = {"cache-control": "no-store"}


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "web/templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def render(settings: Settings, template: str, **values: Any) -> str:
    newsletter = settings.file.newsletter
    common = {
        "newsletter_name": newsletter.name,
        "language": newsletter.language,
        "primary_color": settings.file.brand.primary_color,
    }
    return _environment().get_template(template).render({**common, **values})


def page(
    settings: Settings,
    template: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    """A page that is never cached: most carry a personal token or a form token."""
    body = render(settings, template, **values)
    return HTMLResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


def message_page(
    settings: Settings,
    title: str,
    *paragraphs: str,
    status: int = 200,
    error: bool = False,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return page(
        settings,
        "message.html",
        status,
        headers,
        title=title,
        paragraphs=paragraphs,
        error=error,
    )
