"""CSRF protection for the forms: a signed double-submit cookie.

The GET of a form sets a random cookie (SameSite=Strict, HttpOnly) and puts an HMAC of it
in the form; a POST is taken only when the two match (compared in constant time). Another
site can neither read the cookie nor make the HMAC without the workspace secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from newsletter.audience.tokens import b64
from newsletter.web.context import WebContext
from newsletter.web.pages import page

COOKIE = "nl_csrf"
FIELD = "csrf"


def form_token(context: WebContext, request: Request) -> tuple[str, str | None]:
    """(the form's token, a new cookie value to set or None when the cookie is kept)."""
    cookie = request.cookies.get(COOKIE)
    fresh = None
    if not cookie or len(cookie) > 64:
        cookie = fresh = secrets.token_urlsafe(32)
    return _mac(context, cookie), fresh


def set_cookie(
    context: WebContext, request: Request, response: Response, value: str | None
) -> Response:
    # Secure when the reader's connection is https (as told by a trusted proxy): a local
    # http://127.0.0.1 test still works.
    if value is not None:
        response.set_cookie(
            COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path=context.base_path or "/",
        )
    return response


def valid(context: WebContext, request: Request, submitted: str | None) -> bool:
    cookie = request.cookies.get(COOKIE)
    if not cookie or not submitted:
        return False
    expected = _mac(context, cookie).encode("ascii")
    return hmac.compare_digest(expected, submitted.encode("ascii", "replace"))


def _mac(context: WebContext, cookie: str) -> str:
    key = hmac.new(context.secret.encode("utf-8"), b"newsletter-csrf-v1", hashlib.sha256)
    return b64(hmac.new(key.digest(), cookie.encode("utf-8"), hashlib.sha256).digest())


def form_page(
    context: WebContext, request: Request, template: str, status: int = 200, **values: Any
) -> Response:
    """A page with a form posting back to this URL, its CSRF token and cookie in place."""
    token, fresh = form_token(context, request)
    query = str(request.url.query)
    action = str(request.url.path) + (f"?{query}" if query else "")
    response = page(context.settings, template, status, action=action, csrf=token, **values)
    return set_cookie(context, request, response, fresh)
