"""Signed one-click unsubscribe links: one HMAC-SHA256 token per (list, address).

The link names the address and the list in the clear and carries a token that only the
holder of the secret can compute, so a token for one address cannot unsubscribe another,
and a link for one list cannot unsubscribe from another list kept with the same secret.
The token is computed over `address_key(address)`: space and letter case do not count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, urlsplit

from newsletter.audience.addresses import address_key
from newsletter.errors import ConfigError

SECRET_ENV = "NEWSLETTER_UNSUBSCRIBE_SECRET"
MIN_SECRET_CHARS = 16
# 128 bits of the MAC: far beyond guessing over HTTP, and keeps every link short.
TOKEN_BYTES = 16
_DOMAIN = b"newsletter-unsubscribe-v1"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class UnsubscribeLinks:
    """Makes and checks the per-recipient unsubscribe URL of one list."""

    def __init__(self, base_url: str, list_name: str, secret: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ConfigError(
                f"unsubscribe_url {base_url!r} is not an http(s) URL",
                where="newsletter.toml [newsletter] unsubscribe_url",
                fix="set it to the page that handles unsubscribe requests",
            )
        if len(secret) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"{SECRET_ENV} is shorter than {MIN_SECRET_CHARS} characters",
                where=".env",
                fix="use a long random string, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
            )
        self.base_url = base_url
        self.list_name = list_name
        self._key = secret.encode("utf-8")
        self._prefix = (
            f"{base_url}{'&' if parts.query else '?'}list={quote(list_name, safe='')}&email="
        )

    def token(self, address: str) -> str:
        payload = b"\x00".join(
            (_DOMAIN, self.list_name.encode("utf-8"), address_key(address).encode("utf-8"))
        )
        return _b64(hmac.new(self._key, payload, hashlib.sha256).digest()[:TOKEN_BYTES])

    def url(self, address: str) -> str:
        return f"{self._prefix}{quote(address, safe='@')}&token={self.token(address)}"

    def verify(self, address: str, token: str) -> bool:
        """True only for the token made for this address and this list (constant time)."""
        expected = self.token(address)
        return hmac.compare_digest(expected.encode("ascii"), token.encode("ascii", "replace"))
