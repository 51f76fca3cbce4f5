"""The one rule for email addresses: what is valid, how it is stored, when two are the same.

Addresses are checked for syntax with email-validator (no DNS lookups) and stored as
given, with surrounding spaces removed and the domain lower-cased (email-validator's
normalised form). Two addresses are the same subscriber when they are equal ignoring
case, the local part included: RFC 5321 lets a mailbox be case-sensitive, but no mailbox
provider we send to treats it so, and a double send costs more than a merged address.
Nothing else is rewritten (no Gmail dot or +tag folding).

Names are stored exactly as given, bar surrounding space (`clean_name`);
`message.display_name` gives the form that may go into an email header (SendGrid
refuses `;` and `,` in `to.name`).
"""

from __future__ import annotations

import functools
import re

from email_validator import EmailNotValidError, validate_email

# The longest address taken; SendGrid's documented limit too (sendgrid/limits.py).
MAX_ADDRESS_CHARS = 320
# RFC 5322 dot-atom local part (ASCII), then a domain of letters, digits, dots and hyphens.
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9.-]+"
)


class InvalidAddress(ValueError):
    """An address that cannot be a subscriber's; the message says why."""


def address_key(address: str) -> str:
    """The form addresses are compared in: surrounding space and letter case do not count."""
    return address.strip().lower()


def normalize_email(raw: str) -> tuple[str, str]:
    """(address as stored, dedupe key) for a raw address; raises InvalidAddress."""
    text = raw.strip()
    if not text:
        raise InvalidAddress("no email address")
    if len(text) > MAX_ADDRESS_CHARS:
        raise InvalidAddress(f"address longer than {MAX_ADDRESS_CHARS} characters")
    # Fast path for the common case (a million-row import spends most of its time here):
    # a plain ASCII local part needs no normalisation, and domains repeat, so each is
    # validated once. Anything else, and every error message, comes from the full check.
    if _PLAIN_ADDRESS.fullmatch(text):
        local, _, domain = text.rpartition("@")
        if len(local) <= 64 and len(text) <= 254 and (checked := _checked_domain(domain)):
            normalized = f"{local}@{checked}"
            return normalized, address_key(normalized)
    try:
        # No SMTPUTF8: SendGrid and most mail servers cannot deliver to a non-ASCII local part.
        result = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(f"invalid address {text!r}: {exc}") from None
    # An internationalised domain is stored in its ASCII (IDNA) form, which every server takes.
    normalized = str(result.ascii_email or result.normalized)
    return normalized, address_key(normalized)


@functools.lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> str | None:
    """The normalised ASCII domain if email-validator accepts it, else None."""
    try:
        return str(validate_email(f"a@{domain}", check_deliverability=False).ascii_domain)
    except EmailNotValidError:
        return None


def lookup_key(raw: str) -> str:
    """The dedupe key of an address, or a best guess for one that does not validate."""
    try:
        return normalize_email(raw)[1]
    except InvalidAddress:
        return address_key(raw)


def clean_name(value: str | None) -> str | None:
    """A name (or any optional text cell) as stored: surrounding space removed, "" is None."""
    if value is None:
        return None
    value = value.strip()
    return value or None
