"""`send --test ADDR`: the subscribers' message, marked [TEST], to a few addresses; no ledger."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from newsletter.audience.addresses import address_key
from newsletter.deliver.backends import (
    Backend,
    BatchResult,
    Notify,
    Outcome,
    create_backend,
    resolve_name,
)
from newsletter.deliver.message import message_for
from newsletter.deliver.preflight import build_for_sending, unsubscribe_links
from newsletter.errors import DeliveryError, UserError

if TYPE_CHECKING:
    from newsletter.config import Settings


def first_of_each(addresses: Sequence[str]) -> list[str]:
    """The addresses without repeats that differ only in case, as first written."""
    unique: dict[str, str] = {}
    for address in addresses:
        unique.setdefault(address_key(address), address.strip())
    return list(unique.values())


def send_test(
    settings: Settings,
    slug: str,
    addresses: Sequence[str],
    backend_name: str | None = None,
    notify: Notify | None = None,
) -> tuple[Backend, BatchResult]:
    """The subscribers' message, marked [TEST], to `addresses`; the ledger is not touched.

    `notify` hears the backend's retries, so a server that does not answer is not silence.
    """
    from newsletter.audience.addresses import InvalidAddress, normalize_email
    from newsletter.audience.store import SubscriberStore
    from newsletter.db import open_database
    from newsletter.deliver.ledger import Recipient

    checked: list[str] = []
    for address in addresses:
        try:
            checked.append(normalize_email(address)[0])
        except InvalidAddress as exc:
            raise UserError(f"--test {address!r} is not an email address ({exc})") from None
    name = resolve_name(settings, backend_name)
    warnings: list[str] = []
    build = build_for_sending(settings, slug)
    message = message_for(settings, build, unsubscribe_links(settings, name, warnings)).as_test()
    conn = open_database(settings.database)
    try:
        store = SubscriberStore(conn)
        recipients = []
        for address in first_of_each(checked):
            known = store.get(address)
            recipients.append(
                Recipient(known.id, address, known.name, known.first_name, known.fields)
                if known is not None
                else Recipient(0, address, None, None, {})
            )
    finally:
        conn.close()
    backend = create_backend(name, settings, notify)
    try:
        result = backend.send_batch(message, recipients)
    finally:
        backend.close()
    if result.outcome != Outcome.SENT:
        raise DeliveryError(
            f"the test send was not accepted ({result.outcome}): {result.error}",
            fix="see the error; nothing was recorded",
        )
    return backend, result
