"""/webhooks/sendgrid: SendGrid's signed event webhook.

Every answer is JSON. SendGrid posts the body again on any answer but 2xx (for up to a
day), so the answers are chosen for what a retry would do:

- 503: no verification key is configured, or the database is busy: a retry can succeed.
- 403: unsigned, tampered, wrongly signed or stale (more than 10 minutes off our clock).
- 400: the body is not UTF-8, not JSON, not a list, or not one item in it is an event.
- 200 with counts: every readable event is stored (once) and applied. Items that are not
  events are counted as `malformed` and dropped: refusing the whole body for them would
  make SendGrid post the same unreadable batch over and over, and hold back the good ones.

The log says what happened and how many events; never the body, key or signature.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from newsletter.audience.events import read_events, store_events
from newsletter.web.context import WebContext
from newsletter.web.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BadKey,
    Refused,
    load_key,
    verify,
)

log = logging.getLogger("newsletter.web")
PATH = "/webhooks/sendgrid"
KEY_VARIABLE = "SENDGRID_WEBHOOK_PUBLIC_KEY"
_NO_STORE = {"cache-control": "no-store"}


class BadBody(ValueError):
    """A signed body that holds no events we can read; the message says why."""


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status, headers=_NO_STORE)


def parse_body(body: bytes) -> list[Any]:
    """The list of items SendGrid posts; raises BadBody."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadBody("the body is not UTF-8") from None
    try:
        items = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: also an integer of over 4,300 digits
        raise BadBody("the body is not JSON") from None
    if not isinstance(items, list):
        raise BadBody("the body is not a JSON list of events")
    return items


def _ingest(context: WebContext, headers: dict[str, str], body: bytes, key_text: str) -> Response:
    """Verify, read and store one post (in a worker thread: hashing and JSON take time)."""
    try:
        key = load_key(key_text)
    except BadKey as exc:
        log.error("sendgrid webhook: %s is set but unusable (%s)", KEY_VARIABLE, exc)
        return _error(503, f"the event webhook is not set up: {KEY_VARIABLE} is {exc}")
    try:
        verify(key, headers, body, context.clock())
    except Refused as exc:
        log.warning("sendgrid webhook: refused (%s)", exc.reason)
        return _error(403, exc.reason)
    try:
        items = parse_body(body)
    except BadBody as exc:
        log.warning("sendgrid webhook: bad body (%s, %d bytes)", exc, len(body))
        return _error(400, str(exc))
    events, malformed = read_events(items)
    if malformed and not events:
        log.warning("sendgrid webhook: no readable event among %d items", malformed)
        return _error(400, f"none of the {malformed} items is an event")
    result = store_events(context.db(), events, context.clock())
    log.info(
        "sendgrid webhook: %d events, %d stored, %d duplicates, %d malformed, "
        "%d subscribers changed",
        result.received,
        result.stored,
        result.duplicates,
        malformed,
        result.subscribers_changed,
    )
    return JSONResponse(
        {
            "received": result.received + malformed,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "malformed": malformed,
            "subscribers_changed": result.subscribers_changed,
        },
        headers=_NO_STORE,
    )


async def sendgrid_events(request: Request) -> Response:
    context: WebContext = request.app.state.context
    key_text = context.settings.secrets.sendgrid_webhook_public_key
    if not key_text:
        return _error(
            503,
            f"the event webhook is not set up: set {KEY_VARIABLE} to SendGrid's "
            "verification key (Mail Settings > Event Webhook, signature verification on)",
        )
    body = await request.body()
    headers = {name: request.headers.get(name, "") for name in (SIGNATURE_HEADER, TIMESTAMP_HEADER)}
    return await run_in_threadpool(_ingest, context, headers, body, key_text)


routes: list[BaseRoute] = [Route(PATH, sendgrid_events, methods=["POST"])]
