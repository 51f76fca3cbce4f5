"""The double opt-in message: one link to the confirmation page, through the backend."""

from __future__ import annotations

from newsletter.deliver.backends import Outcome, create_backend, resolve_name
from newsletter.deliver.ledger import Recipient
from newsletter.deliver.message import Address, Message
from newsletter.errors import DeliveryError
from newsletter.web.context import WebContext
from newsletter.web.pages import render

CONFIRMATION_ISSUE = "_confirmations"  # never an issue slug: the outbox folder, custom_args issue
TOKEN_PURPOSE = "confirm"
CONFIRM_DAYS = 7


def confirm_url(context: WebContext, address: str) -> str:
    token = context.sealed(TOKEN_PURPOSE).seal(address, str(int(context.clock())))
    base = context.settings.file.web.base_url
    page = f"{base}/subscribe/confirm" if base else context.settings.file.newsletter.subscribe_url
    return f"{page}?t={token}"


def read_confirmation(context: WebContext, token: str) -> tuple[str, bool] | None:
    """(address, still valid) for a confirmation token, or None when it is not one of ours."""
    opened = context.sealed(TOKEN_PURPOSE).open(token, 2)
    if opened is None or not opened[1].isdigit():
        return None
    age = context.clock() - int(opened[1])
    return opened[0], -300 <= age <= CONFIRM_DAYS * 86_400


def send_confirmation(context: WebContext, address: str, name: str | None) -> None:
    """Mail the confirmation link; raises DeliveryError when the backend did not take it."""
    settings = context.settings
    newsletter, sender = settings.file.newsletter, settings.file.sender
    values = {"name": newsletter.name, "url": confirm_url(context, address), "days": CONFIRM_DAYS}
    message = Message(
        issue=CONFIRMATION_ISSUE,
        subject=f"Confirm your subscription to {newsletter.name}",
        sender=Address(sender.email, sender.name or None),
        reply_to=sender.reply_to,
        html=render(settings, "confirmation_email.html", **values),
        text=render(settings, "confirmation_email.txt", **values),
        list_name=newsletter.list_name,
        list_domain=sender.email.rpartition("@")[2] or "localhost",
        unsubscribe=context.links,
        categories=("confirmation",),
    )
    backend = create_backend(resolve_name(settings), settings)
    try:
        result = backend.send_batch(message, [Recipient(0, address, name, None, {})])
    finally:
        backend.close()
    if result.outcome != Outcome.SENT:
        raise DeliveryError(f"the confirmation message was not sent ({result.error})")
