"""/unsubscribe: a page with one button (GET never changes anything) and RFC 8058 one-click.

Link scanners and antivirus proxies fetch every link in a message, so a GET only shows
whom the link is for. The button posts the form back (CSRF-checked); a mail client's
one-click request posts `List-Unsubscribe=One-Click` with no cookie, and the sealed token
in the URL is its proof. Either unsubscribes at once, and saying it twice is harmless.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from newsletter.audience.consent import record_unsubscribe
from newsletter.audience.records import Status
from newsletter.audience.store import SubscriberStore
from newsletter.audience.unsubscribe import UnsubscribeRequest
from newsletter.web.context import WebContext
from newsletter.web.csrf import FIELD as CSRF_FIELD
from newsletter.web.csrf import form_page, valid
from newsletter.web.forms import BadForm, read_form
from newsletter.web.pages import message_page

ONE_CLICK_FIELD, ONE_CLICK_VALUE = "List-Unsubscribe", "One-Click"
_INVALID = (
    "This unsubscribe link is not valid: it may have been cut short or changed on the way. "
    "Use the link in the newsletter itself, or reply to the newsletter and we will take you off "
    "the list."
)


def _target(context: WebContext, request: Request) -> UnsubscribeRequest | None:
    return context.links.read(dict(request.query_params))


def _status(context: WebContext, address: str) -> str | None:
    subscriber = SubscriberStore(context.db()).get(address)
    return None if subscriber is None else subscriber.status


def _unsubscribe(context: WebContext, target: UnsubscribeRequest, method: str, ip: str) -> bool:
    return record_unsubscribe(context.db(), target.address, method, target.issue, ip)


async def unsubscribe(request: Request) -> Response:
    context: WebContext = request.app.state.context
    settings = context.settings
    target = _target(context, request)
    if request.method in ("GET", "HEAD"):
        if target is None:
            return message_page(settings, "Link not valid", _INVALID, status=400, error=True)
        status = await run_in_threadpool(_status, context, target.address)
        return form_page(
            context,
            request,
            "unsubscribe.html",
            title="Unsubscribe",
            address=target.address,
            already=status is not None and status != Status.ACTIVE and status != Status.PENDING,
        )
    try:
        form = await read_form(request)
    except BadForm as exc:
        return PlainTextResponse(f"Bad request: {exc}\n", status_code=400)
    one_click = form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE
    if target is None:
        if one_click:
            return PlainTextResponse("Invalid unsubscribe link\n", status_code=400)
        return message_page(settings, "Link not valid", _INVALID, status=400, error=True)
    ip = request.client.host if request.client else ""
    if one_click:
        await run_in_threadpool(_unsubscribe, context, target, "one-click", ip)
        return PlainTextResponse("Unsubscribed\n", headers={"cache-control": "no-store"})
    if not valid(context, request, form.get(CSRF_FIELD)):
        return message_page(
            settings,
            "Please try again",
            "This page was open too long or came from somewhere else. Open the unsubscribe "
            "link from the newsletter again and press the button.",
            status=403,
            error=True,
        )
    await run_in_threadpool(_unsubscribe, context, target, "page", ip)
    return message_page(
        settings,
        "You are unsubscribed",
        f"{target.address} will not receive {settings.file.newsletter.name} any more.",
        "Changed your mind? You can subscribe again at any time.",
    )


routes = [Route("/unsubscribe", unsubscribe, methods=["GET", "POST"])]
