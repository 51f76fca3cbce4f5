"""/subscribe: the signup form with double opt-in, and /subscribe/confirm.

Every answer to a signup is the same page, whether the address is new, already on the
list, unsubscribed or blocked, so the form tells nobody who subscribes. The confirmation
page shows one button: a GET (a link scanner) never confirms anyone.
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from newsletter.audience.addresses import InvalidAddress
from newsletter.audience.consent import (
    SignupOutcome,
    confirm_signup,
    recent_signups,
    record_signup,
)
from newsletter.errors import NewsletterError
from newsletter.web.confirmation import read_confirmation, send_confirmation
from newsletter.web.context import WebContext
from newsletter.web.csrf import FIELD as CSRF_FIELD
from newsletter.web.csrf import form_page, valid
from newsletter.web.forms import BadForm, read_form
from newsletter.web.pages import message_page

log = logging.getLogger("newsletter.web")
HONEYPOT = "website"


def _form_page(context: WebContext, request: Request, status: int = 200, **values: str) -> Response:
    return form_page(
        context,
        request,
        "subscribe.html",
        status,
        title=f"Subscribe to {context.settings.file.newsletter.name}",
        privacy_note=context.settings.file.web.privacy_note,
        email=values.get("email", ""),
        name=values.get("name", ""),
        error=values.get("error", ""),
    )


def _check_your_inbox(context: WebContext) -> Response:
    return message_page(
        context.settings,
        "Check your inbox",
        "If the address can receive our newsletter, a message with a confirmation link is "
        "on its way to it. Open it and press the button to start your subscription.",
        "Nothing arrived? Look in the spam folder, or sign up again in a few minutes.",
    )


def _sign_up(context: WebContext, email: str, name: str, ip: str) -> bool:
    """Record the signup and mail the link; False when this IP address asks too often."""
    conn, web = context.db(), context.settings.file.web
    if recent_signups(conn, ip=ip) >= web.signups_per_hour_per_ip:
        return False
    if recent_signups(conn, address=email) >= web.signups_per_hour_per_address:
        return True  # answered like any other, but the mailbox is not flooded
    signup = record_signup(conn, email, name or None, ip, "subscribe")
    if signup.outcome is not SignupOutcome.BLOCKED:
        send_confirmation(context, signup.address, signup.name)
    return True


async def subscribe(request: Request) -> Response:
    context: WebContext = request.app.state.context
    settings = context.settings
    if request.method in ("GET", "HEAD"):
        return _form_page(context, request)
    try:
        form = await read_form(request)
    except BadForm as exc:
        return message_page(settings, "Bad request", str(exc), status=400, error=True)
    if not valid(context, request, form.get(CSRF_FIELD)):
        return _form_page(
            context, request, 403, error="The form had expired. Please send it again."
        )
    email, name = form.get("email", "").strip(), form.get("name", "").strip()[:200]
    if form.get(HONEYPOT):
        return _check_your_inbox(context)  # a bot: same answer, nothing stored or sent
    ip = request.client.host if request.client else ""
    try:
        allowed = await run_in_threadpool(_sign_up, context, email, name, ip)
    except InvalidAddress as exc:
        return _form_page(
            context, request, 400, email=email, name=name, error=f"Please check the address: {exc}"
        )
    except NewsletterError as exc:
        log.error("signup: the confirmation message failed: %s", exc.line())
        return message_page(
            settings,
            "Please try again later",
            "We could not send the confirmation message just now. Please try again in a while.",
            status=503,
            error=True,
        )
    if not allowed:
        return message_page(
            settings,
            "Too many signups",
            "Too many signups came from your network in the last hour. Please try again later.",
            status=429,
            error=True,
            headers={"retry-after": "3600"},
        )
    return _check_your_inbox(context)


async def confirm(request: Request) -> Response:
    context: WebContext = request.app.state.context
    settings = context.settings
    read = read_confirmation(context, request.query_params.get("t", ""))
    if read is None or not read[1]:
        what = "is not valid" if read is None else "has expired"
        return message_page(
            settings,
            "Link not valid",
            f"This confirmation link {what}. Sign up again and use the link in the new message.",
            status=400,
            error=True,
        )
    address = read[0]
    if request.method in ("GET", "HEAD"):
        return form_page(
            context, request, "confirm.html", title="Confirm your subscription", address=address
        )
    try:
        form = await read_form(request)
    except BadForm as exc:
        return message_page(settings, "Bad request", str(exc), status=400, error=True)
    if not valid(context, request, form.get(CSRF_FIELD)):
        return message_page(
            settings,
            "Please try again",
            "This page was open too long. Open the link in the message again.",
            status=403,
            error=True,
        )
    ip = request.client.host if request.client else ""
    confirmed = await run_in_threadpool(lambda: confirm_signup(context.db(), address, ip))
    if not confirmed:
        return message_page(
            settings,
            "Not subscribed",
            f"{address} cannot be subscribed through this link any more. Sign up again on "
            "the form to get a new one.",
            status=409,
            error=True,
        )
    return message_page(
        settings,
        "You are subscribed",
        f"Thank you: {address} will receive {settings.file.newsletter.name} from the next issue.",
    )


routes = [
    Route("/subscribe", subscribe, methods=["GET", "POST"]),
    Route("/subscribe/confirm", confirm, methods=["GET", "POST"]),
]
