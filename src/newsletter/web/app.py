"""The ASGI application of `newsletter serve`: routes, error pages and the layers around them.

Starlette rather than FastAPI: the reader's side is a handful of HTML pages, forms and one
webhook; it needs no generated API schema, and Starlette is the part of FastAPI we use.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, cast
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from newsletter.config import Settings
from newsletter.db import engine_errors, explain
from newsletter.errors import LockBusy, NewsletterError
from newsletter.web.archive_routes import routes as archive_routes
from newsletter.web.context import WEB_BUSY_TIMEOUT_MS, WebContext
from newsletter.web.pages import message_page
from newsletter.web.security import WEBHOOK_PREFIX, BodyTooLarge, Guard
from newsletter.web.signup import routes as signup_routes
from newsletter.web.unsubscribe import routes as unsubscribe_routes
from newsletter.web.webhook import routes as webhook_routes

log = logging.getLogger("newsletter.web")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    settings: Settings,
    *,
    clock: Callable[[], float] = time.time,
    extra_hosts: Iterable[str] = (),
    busy_timeout_ms: int = WEB_BUSY_TIMEOUT_MS,
) -> ASGIApp:
    """The whole application for one workspace; `extra_hosts` adds Host names to answer."""
    context = WebContext.load(settings, clock, busy_timeout_ms)
    routes: list[BaseRoute] = [
        Route("/healthz", health, methods=["GET"]),
        *unsubscribe_routes,
        *signup_routes,
        *archive_routes,
        *webhook_routes,
    ]
    if context.base_path:
        routes = [Mount(context.base_path, routes=routes)]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        context.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: _http_error,
            # Raised by Guard's receive for a body without Content-Length that grows too
            # large; without this handler Starlette's outer error layer answered 500.
            BodyTooLarge: _too_large,
            # The client left before its body arrived: nobody to answer, nothing to log.
            ClientDisconnect: _client_gone,
            NewsletterError: _unavailable,
            **dict.fromkeys(engine_errors(settings.database), _unavailable),
            Exception: _server_error,
        },
    )
    app.state.context = context
    hosts = allowed_hosts(settings, extra_hosts)
    guarded = Guard(TrustedHostMiddleware(app, allowed_hosts=hosts))
    trusted = list(settings.file.web.trusted_proxies)
    # uvicorn and Starlette spell the same ASGI types differently.
    return cast(ASGIApp, ProxyHeadersMiddleware(cast(Any, guarded), trusted_hosts=trusted))


def allowed_hosts(settings: Settings, extra: Iterable[str] = ()) -> list[str]:
    web = settings.file.web
    hosts = [*web.allowed_hosts, *extra]
    if web.base_url:
        host = urlsplit(web.base_url).hostname
        if host:
            hosts.append(host)
    return list(dict.fromkeys(hosts)) or list(LOOPBACK_HOSTS)


async def health(request: Request) -> Response:
    context: WebContext = request.app.state.context

    def probe() -> None:
        context.db().execute("SELECT count(*) FROM _migrations").fetchone()

    await run_in_threadpool(probe)
    return JSONResponse({"ok": True, "database": "ok"}, headers={"cache-control": "no-store"})


def _wants_json(request: Request) -> bool:
    return WEBHOOK_PREFIX in request.url.path or request.url.path.endswith("/healthz")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Method not allowed"}
    title = titles.get(exc.status_code, "Bad request")
    headers = dict(exc.headers or {})
    if _wants_json(request):
        return JSONResponse({"error": title.lower()}, exc.status_code, headers=headers)
    settings = request.app.state.context.settings
    response = message_page(
        settings, title, "There is nothing to do at this address.", status=exc.status_code
    )
    response.headers.update(headers)
    return response


async def _client_gone(request: Request, exc: Exception) -> Response:
    log.info(
        "%s %s: the client disconnected before its request body arrived",
        request.method,
        request.url.path,
    )
    return PlainTextResponse("", status_code=400)


async def _too_large(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("Request body too large\n", status_code=413)


async def _unavailable(request: Request, exc: Exception) -> Response:
    """The database is busy (a send holds it), read-only or damaged: 503, try later."""
    if isinstance(exc, NewsletterError):
        line = exc.line()
    else:
        known = explain(exc)
        line = known.line() if known else f"database error: {exc}"
    log.error("%s %s: %s", request.method, request.url.path, line)
    retry = {"retry-after": "30" if isinstance(exc, LockBusy) else "300"}
    if _wants_json(request):
        return JSONResponse({"error": "unavailable, try again later"}, 503, headers=retry)
    settings = request.app.state.context.settings
    response = message_page(
        settings,
        "Please try again in a moment",
        "We cannot take your request just now. Nothing was changed; please try again.",
        status=503,
        error=True,
    )
    response.headers.update(retry)
    return response


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return PlainTextResponse("Internal error: nothing was changed\n", status_code=500)
