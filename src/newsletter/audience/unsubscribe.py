"""Unsubscribe links: one opaque, sealed token per (list, issue, address).

The link is `unsubscribe_url?t=TOKEN`. The token carries the address and the issue,
encrypted and authenticated under the workspace secret (see `tokens`), so the address is
never in the URL in the clear (link scanners, logs, referrers, SpamAssassin's
GB_CUSTOM_HTM_URI) and only the holder of the secret can make one. A token is bound to its
list: a link for one list cannot unsubscribe from another kept with the same secret.

Links of issues sent before (`?list=L&email=E&token=HMAC`) keep working: `read` checks
them with the old HMAC-SHA256 scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from newsletter.audience.addresses import address_key
from newsletter.audience.tokens import SealedTokens
from newsletter.errors import ConfigError, UserError

SECRET_ENV = "NEWSLETTER_UNSUBSCRIBE_SECRET"
MIN_SECRET_CHARS = 16
TOKEN_PARAMETER = "t"
# The links of issues sent before sealed tokens: 128 bits of an HMAC-SHA256.
LEGACY_TOKEN_BYTES = 16
_LEGACY_DOMAIN = b"newsletter-unsubscribe-v1"
# Without NEWSLETTER_UNSUBSCRIBE_SECRET, rehearsals and `newsletter serve` on the same
# machine share this workspace's own key, so the links of outbox files work locally.
LOCAL_SECRET_FILE = ".newsletter-secret"


def local_secret(workspace: Path) -> str:
    """This workspace's own key, made once (readable by its owner only)."""
    path = workspace / LOCAL_SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    except OSError as exc:
        raise UserError(
            f"cannot create the workspace key ({exc.strerror})",
            where=path,
            fix=f"set {SECRET_ENV} in .env instead, or make the workspace writable",
        ) from None
    else:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
    try:
        value = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(
            f"cannot read the workspace key ({exc})", where=path, fix="delete the file"
        ) from None
    if len(value) < MIN_SECRET_CHARS:
        raise UserError(
            "the workspace key is too short (an empty or damaged file)",
            where=path,
            fix="delete the file: the next command makes a new one",
        )
    return value


@dataclass(frozen=True)
class UnsubscribeRequest:
    """Whom a verified link unsubscribes, and from which issue's message (when known)."""

    address: str
    issue: str | None


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
                where=SECRET_ENV,
                fix="use a long random string, e.g. from "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
            )
        self.base_url = base_url
        self.list_name = list_name
        self._key = secret.encode("utf-8")
        self._sealed = SealedTokens(secret, f"unsubscribe:{list_name}")
        self._prefix = f"{base_url}{'&' if parts.query else '?'}{TOKEN_PARAMETER}="

    def token(self, address: str, issue: str = "") -> str:
        return self._sealed.seal(address.strip(), issue)

    def url(self, address: str, issue: str = "") -> str:
        return self._prefix + self.token(address, issue)

    def read(self, query: Mapping[str, str]) -> UnsubscribeRequest | None:
        """Whom the link's parameters unsubscribe, or None when they are not a valid link."""
        token = query.get(TOKEN_PARAMETER)
        if token is not None:
            opened = self._sealed.open(token, 2)
            if opened is None:
                return None
            return UnsubscribeRequest(opened[0], opened[1] or None)
        email, legacy = query.get("email"), query.get("token")
        if email is None or legacy is None or query.get("list") != self.list_name:
            return None
        return UnsubscribeRequest(email, None) if self.verify(email, legacy) else None

    def legacy_token(self, address: str) -> str:
        """The token of links sent before sealed tokens (kept so those links still work)."""
        payload = b"\x00".join(
            (_LEGACY_DOMAIN, self.list_name.encode("utf-8"), address_key(address).encode("utf-8"))
        )
        digest = hmac.new(self._key, payload, hashlib.sha256).digest()[:LEGACY_TOKEN_BYTES]
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def verify(self, address: str, token: str) -> bool:
        """True only for the old-style token of this address and list (constant time)."""
        expected = self.legacy_token(address)
        return hmac.compare_digest(expected.encode("ascii"), token.encode("ascii", "replace"))
