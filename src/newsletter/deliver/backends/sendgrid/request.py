"""mail/send bodies for one message: the shared part once, one personalization per recipient.

The parts go once per request with merge tags left in; each recipient's values travel as
substitutions, so a 1,000-recipient request costs one copy of the HTML, not a thousand.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from newsletter.audience.addresses import MAX_ADDRESS_CHARS, address_key
from newsletter.deliver.backends.sendgrid.limits import (
    MAX_CATEGORIES,
    MAX_PERSONALIZATIONS,
    MAX_SUBSTITUTION_BYTES,
)
from newsletter.deliver.message import display_name
from newsletter.list_headers import ONE_CLICK, list_unsubscribe
from newsletter.merge_tags import MERGE_TAGS, unfilled

if TYPE_CHECKING:
    from newsletter.deliver.message import Message, RecipientLike


def _text_tag(name: str) -> str:
    # The text part gets its own tags: its values are not HTML-escaped.
    return f"%%text_{name}%%"


@dataclass(frozen=True)
class EncodedRequest:
    """One mail/send body, encoded once: what is sent and what its size is measured on."""

    payload: str
    recipients: int

    @property
    def size(self) -> int:
        return len(self.payload)  # ensure_ascii: characters are bytes


class SendGridRequest:
    """Builds mail/send bodies for one message: the shared part once, then per batch."""

    def __init__(self, message: Message) -> None:
        self.message = message
        text = message.text
        for name, tag in MERGE_TAGS.items():
            text = text.replace(tag, _text_tag(name))
        self.html_tags = [name for name, tag in MERGE_TAGS.items() if tag in message.html]
        self.text_tags = [name for name, tag in MERGE_TAGS.items() if tag in message.text]
        body: dict[str, Any] = {
            "from": message.sender.as_sendgrid(),
            "subject": message.subject,
            "content": [
                {"type": "text/plain", "value": text},
                {"type": "text/html", "value": message.html},
            ],
            # Message-level headers reach every personalization (SendGrid merges them).
            "headers": {**message.headers, "List-Unsubscribe-Post": ONE_CLICK},
            "custom_args": message.custom_args,
        }
        if message.categories:
            body["categories"] = list(message.categories)
        if message.reply_to:
            body["reply_to"] = {"email": message.reply_to}
        if message.asm_group_id is not None:
            body["asm"] = {"group_id": message.asm_group_id}
        if message.send_at is not None:
            body["send_at"] = message.send_at
        if message.batch_id is not None:
            body["batch_id"] = message.batch_id
        self.shared = body

    def personalization(self, recipient: RecipientLike) -> dict[str, Any]:
        values = self.message.values(recipient)
        substitutions = {MERGE_TAGS[name]: html.escape(values[name]) for name in self.html_tags}
        for name in self.text_tags:
            substitutions[_text_tag(name)] = values[name]
        to: dict[str, str] = {"email": recipient.email}
        shown = display_name(recipient.name)
        if shown:
            to["name"] = shown
        return {
            "to": [to],
            "headers": {"List-Unsubscribe": list_unsubscribe(values["unsubscribe_url"])},
            "substitutions": substitutions,
        }

    def body(self, recipients: Sequence[RecipientLike]) -> dict[str, Any]:
        return {**self.shared, "personalizations": [self.personalization(r) for r in recipients]}

    def encode(self, recipients: Sequence[RecipientLike]) -> EncodedRequest:
        return EncodedRequest(json.dumps(self.body(recipients)), len(recipients))


def validate_body(body: Mapping[str, Any]) -> list[str]:
    """What SendGrid documents as wrong with a body we built; empty when it is fine.

    A rehearsal check for --dry-run: the limits, and every merge tag of every part filled
    for every personalization.
    """
    problems: list[str] = []
    personalizations = body.get("personalizations", [])
    if not 1 <= len(personalizations) <= MAX_PERSONALIZATIONS:
        problems.append(
            f"{len(personalizations)} personalizations "
            f"(SendGrid allows 1 to {MAX_PERSONALIZATIONS})"
        )
    if len(body.get("categories", [])) > MAX_CATEGORIES:
        problems.append(f"more than {MAX_CATEGORIES} categories")
    parts = [body["subject"], *(block["value"] for block in body["content"])]
    needed = set().union(*(unfilled(part) for part in parts))
    seen: set[str] = set()
    for i, personalization in enumerate(personalizations):
        where = f"personalization {i}"
        for recipient in personalization["to"]:
            address = recipient["email"]
            if len(address) > MAX_ADDRESS_CHARS:
                problems.append(f"{where}: address longer than {MAX_ADDRESS_CHARS} characters")
            if address_key(address) in seen:
                problems.append(f"{where}: {address} appears twice in one request")
            seen.add(address_key(address))
            if any(c in recipient.get("name", "") for c in ";,\r\n"):
                problems.append(f"{where}: the name of {address} contains ; , or a line break")
        substitutions = personalization.get("substitutions", {})
        missing = needed - substitutions.keys()
        if missing:
            problems.append(f"{where}: merge tag(s) left unfilled: {', '.join(sorted(missing))}")
        leftovers = [tag for value in substitutions.values() for tag in unfilled(value)]
        if leftovers:
            problems.append(f"{where}: a value holds a merge tag ({leftovers[0]})")
        size = len(json.dumps(substitutions).encode("utf-8"))
        if size >= MAX_SUBSTITUTION_BYTES:
            problems.append(f"{where}: substitutions take {size:,} bytes (limit 10,000)")
        for name, value in personalization.get("headers", {}).items():
            if "\r" in value or "\n" in value:
                problems.append(f"{where}: header {name} contains a line break")
    return problems
