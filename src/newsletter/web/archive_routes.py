"""/archive/: the index, each issue's web version, and the Atom feed."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from newsletter.issue.model import SLUG_PATTERN
from newsletter.web.archive import (
    ARCHIVE_POLICY,
    atom_feed,
    find,
    index_html,
    published,
)
from newsletter.web.context import WebContext
from newsletter.web.pages import message_page

CACHE = {"cache-control": "public, max-age=300"}


def _context(request: Request) -> WebContext:
    context: WebContext = request.app.state.context
    return context


async def index(request: Request) -> Response:
    context = _context(request)
    issues = await run_in_threadpool(lambda: published(context.settings, context.db()))
    html = index_html(context.settings, issues, static=False)
    return HTMLResponse(html, headers=CACHE)


async def feed(request: Request) -> Response:
    context = _context(request)
    issues = await run_in_threadpool(lambda: published(context.settings, context.db()))
    return Response(
        atom_feed(context.settings, issues),
        media_type="application/atom+xml; charset=utf-8",
        headers=CACHE,
    )


async def issue(request: Request) -> Response:
    context = _context(request)
    slug = str(request.path_params["slug"])
    item = None
    if SLUG_PATTERN.match(slug):
        item = await run_in_threadpool(lambda: find(context.settings, context.db(), slug))
    if item is None:
        return message_page(
            context.settings,
            "Not found",
            "There is no issue at this address. The archive lists every issue that went out.",
            status=404,
            error=True,
        )
    html = await run_in_threadpool(item.web_html.read_bytes)
    headers = {**CACHE, "content-security-policy": ARCHIVE_POLICY}
    return HTMLResponse(html, headers=headers)


async def to_index(request: Request) -> Response:
    # A relative target: the redirect can never leave this site.
    return RedirectResponse("archive/", status_code=308)


async def to_issue(request: Request) -> Response:
    # Only a slug, and only to this path plus "/": "https:evil.com" must never become an
    # absolute Location.
    if not SLUG_PATTERN.match(str(request.path_params["slug"])):
        return message_page(
            _context(request).settings, "Not found", "There is no issue here.", status=404
        )
    return RedirectResponse(request.url.path + "/", status_code=308)


routes = [
    Route("/archive", to_index, methods=["GET"]),
    Route("/archive/", index, methods=["GET"]),
    Route("/archive/feed.xml", feed, methods=["GET"]),
    Route("/archive/{slug}/", issue, methods=["GET"]),
    Route("/archive/{slug}/index.html", issue, methods=["GET"]),  # as the static copy links
    Route("/archive/{slug}", to_issue, methods=["GET"]),
]
