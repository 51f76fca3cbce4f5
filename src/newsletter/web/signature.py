"""SendGrid's signed event webhook: checking that a post comes from SendGrid, and is fresh.

SendGrid signs SHA-256(timestamp header + raw body) with ECDSA on P-256 and sends the
DER signature in base64; the verification key it shows is a base64 DER
SubjectPublicKeyInfo. This is the computation of SendGrid's own helper
(`sendgrid.helpers.eventwebhook.EventWebhook.verify_signature`, same `cryptography`
call), done on the raw bytes: the helper takes the body as text and encodes it again,
which only gives the bytes back for UTF-8 bodies, and it decodes base64 leniently.
"""

from __future__ import annotations

import base64
import binascii
import functools
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
# A post older or newer than this is refused: a captured post cannot be replayed later.
MAX_SKEW_SECONDS = 600
# A DER ECDSA P-256 signature is at most 72 bytes; anything much longer is not one.
MAX_SIGNATURE_CHARS = 200
MAX_TIMESTAMP_CHARS = 20


class BadKey(ValueError):
    """SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 public key; the message says why."""


class Refused(Exception):
    """A post that is not SendGrid's, or not fresh: `reason` is one line for the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@functools.lru_cache(maxsize=4)
def load_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key from its base64 DER form (PEM armour and spaces tolerated)."""
    lines = [line for line in text.strip().splitlines() if not line.startswith("-----")]
    try:
        der = base64.b64decode("".join("".join(lines).split()), validate=True)
        key = load_der_public_key(der)
    except (binascii.Error, ValueError):
        raise BadKey("not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise BadKey("not an ECDSA P-256 key")
    return key


def verify(
    key: ec.EllipticCurvePublicKey, headers: Mapping[str, str], body: bytes, now: float
) -> None:
    """Return if `body` with `headers` is a fresh post signed by `key`; raise Refused."""
    signature, timestamp = headers.get(SIGNATURE_HEADER), headers.get(TIMESTAMP_HEADER)
    if not signature or not timestamp:
        raise Refused("unsigned: the signature and timestamp headers are required")
    timestamp = timestamp.strip()
    if len(timestamp) > MAX_TIMESTAMP_CHARS or not timestamp.isascii() or not timestamp.isdigit():
        raise Refused("malformed timestamp header")
    if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
        raise Refused("stale: the timestamp is more than 10 minutes from our clock")
    try:
        if len(signature) > MAX_SIGNATURE_CHARS:
            raise ValueError
        der = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("malformed signature header") from None
    try:
        key.verify(der, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Refused("the signature does not match the body") from None
