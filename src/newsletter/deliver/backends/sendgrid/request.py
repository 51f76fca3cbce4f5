"""mail/send bodies for one message: the shared part once, one personalization per recipient.

The parts go once per request with merge tags left in; each recipient's values travel as
substitutions, so a 1,000-recipient request costs one copy of the HTML, not a thousand.
The text part's tags are its own (its values are not HTML-escaped), except the unsubscribe
URL's when escaping cannot change it: then both parts share one tag, and each recipient's
URL travels once in the substitutions instead of twice (a quarter of each personalization).

`encode` writes the JSON text itself, the same text `json.dumps(body(...))` gives: the
shared part is encoded once per message, and each personalization is put together from
strings encoded by json's C string encoder, without building dicts first. What is the same
for every recipient (the unsubscribe URL's prefix, the tags' keys) is encoded once; a
first name's values are kept for the recipients who share it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from newsletter.audience.addresses import MAX_ADDRESS_CHARS, address_key
from newsletter.deliver.backends.sendgrid.limits import (
    MAX_CATEGORIES,
    MAX_PERSONALIZATIONS,
    MAX_SUBSTITUTION_BYTES,
)
from newsletter.deliver.message import display_name, first_name_of
from newsletter.list_headers import ONE_CLICK, list_unsubscribe
from newsletter.merge_tags import MERGE_TAGS, neutralise_markers, unfilled

if TYPE_CHECKING:
    from newsletter.deliver.message import Message, RecipientLike


# A JSON string literal of ASCII text (json.dumps' default `ensure_ascii`), quotes included.
_quote = encode_basestring_ascii
# A sealed token (hex): nothing in it is escaped in JSON or in HTML.
_PLAIN_TOKEN = re.compile(r"[0-9a-f]*")
# First names seen (raw first name and name -> the encoded values); bounded.
MAX_CACHED_NAMES = 10_000


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
        self._url_prefix = _unsubscribe_url_prefix(message)
        # Values the same HTML-escaped or not: one tag serves both parts.
        shared = {"unsubscribe_url"} if html.escape(self._url_prefix) == self._url_prefix else set()
        text = message.text
        for name, tag in MERGE_TAGS.items():
            if name not in shared:
                text = text.replace(tag, _text_tag(name))
        # The tags filled with HTML-escaped values, and the text part's own tags.
        self.html_tags = [
            name
            for name, tag in MERGE_TAGS.items()
            if tag in message.html or (name in shared and tag in message.text)
        ]
        self.text_tags = [
            name for name, tag in MERGE_TAGS.items() if name not in shared and tag in message.text
        ]
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
        self._prepare_encoding()

    def personalization(self, recipient: RecipientLike) -> dict[str, Any]:
        values = self.message.values(recipient)
        substitutions = {MERGE_TAGS[name]: html.escape(values[name]) for name in self.html_tags}
        if "unsubscribe_url" in self.html_tags and "unsubscribe_url" not in self.text_tags:
            _check_shared_url(values["unsubscribe_url"])
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
        """`json.dumps(self.body(recipients))`, written directly (the same text)."""
        parts = ", ".join([self._encoded(recipient) for recipient in recipients])
        return EncodedRequest(self._head + parts + "]}", len(recipients))

    # -- the JSON text, without the dicts

    def _prepare_encoding(self) -> None:
        empty = json.dumps({**self.shared, "personalizations": []})
        if not empty.endswith("[]}"):
            raise AssertionError("the personalizations must be the body's last key")
        self._head = empty[:-2]  # up to and with the personalizations' "["
        # The URL is a fixed prefix and the token: the prefix is encoded (and escaped) once.
        prefix = self._url_prefix
        self._url_open = _quote(prefix)[:-1]
        self._url_html_open = _quote(html.escape(prefix))[:-1]
        self._header_open = _quote(list_unsubscribe(prefix + "\x00")).partition("\\u0000")
        html_tags, text_tags = set(self.html_tags), set(self.text_tags)
        self._needs_first_name = "first_name" in html_tags | text_tags
        self._needs_email = "email" in html_tags | text_tags
        # The keys of the substitutions, in body() order, each with the value's kind.
        self._keys = [(_quote(MERGE_TAGS[name]) + ": ", name, True) for name in self.html_tags]
        self._keys += [(_quote(_text_tag(name)) + ": ", name, False) for name in self.text_tags]
        self._names: dict[tuple[str | None, str | None], tuple[str, str]] = {}

    def _first_name(self, recipient: RecipientLike) -> tuple[str, str]:
        """The first name's value encoded as HTML and as text, kept for those sharing it."""
        # The name counts only when there is no first name (first_name_of).
        key = (recipient.first_name, None) if recipient.first_name else (None, recipient.name)
        encoded = self._names.get(key)
        if encoded is None:
            value = neutralise_markers(first_name_of(recipient))
            encoded = (_quote(html.escape(value)), _quote(value))
            if len(self._names) >= MAX_CACHED_NAMES:
                self._names.clear()
            self._names[key] = encoded
        return encoded

    def _encoded(self, recipient: RecipientLike) -> str:
        """`json.dumps(self.personalization(recipient))`, the same text."""
        email = recipient.email
        token = self.message.unsubscribe.token(email, self.message.issue)
        if _PLAIN_TOKEN.fullmatch(token):
            url_text, url_html = self._url_open + token + '"', self._url_html_open + token + '"'
            before, _, after = self._header_open
            header = before + token + after
        else:  # not a token this encoder knows: encoded as body() does
            url = self.message.unsubscribe.url(email, self.message.issue)
            url_text, url_html = _quote(url), _quote(html.escape(url))
            header = _quote(list_unsubscribe(url))
            if "unsubscribe_url" not in self.text_tags:
                _check_shared_url(url)
        first_html = first_text = email_html = email_text = ""
        if self._needs_first_name:
            first_html, first_text = self._first_name(recipient)
        if self._needs_email:
            shown_email = neutralise_markers(email)
            email_html, email_text = _quote(html.escape(shown_email)), _quote(shown_email)
        values = {
            "unsubscribe_url": (url_html, url_text),
            "first_name": (first_html, first_text),
            "email": (email_html, email_text),
        }
        substitutions = ", ".join(
            [key + values[name][0 if as_html else 1] for key, name, as_html in self._keys]
        )
        shown = display_name(recipient.name)
        to = '{"email": ' + _quote(email)
        if shown:
            to += ', "name": ' + _quote(shown)
        return (
            '{"to": [' + to + '}], "headers": {"List-Unsubscribe": ' + header + "}, "
            '"substitutions": {' + substitutions + "}}"
        )


def _unsubscribe_url_prefix(message: Message) -> str:
    """What every recipient's unsubscribe URL starts with: all of it but the token."""
    links, issue, probe = message.unsubscribe, message.issue, "probe@example.org"
    url, token = links.url(probe, issue), links.token(probe, issue)
    if not url.endswith(token):
        raise AssertionError("the unsubscribe URL must end with its token")
    return url[: len(url) - len(token)]


def _check_shared_url(url: str) -> None:
    if html.escape(url) != url:
        raise AssertionError("an unsubscribe token changed by HTML escaping cannot share a tag")


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
