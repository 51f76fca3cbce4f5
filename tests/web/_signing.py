"""A SendGrid event webhook signing key made in the test, signing exactly as SendGrid does.

SendGrid signs the timestamp header's value followed by the raw body: ECDSA on P-256 over
SHA-256, the DER signature in base64. Its verification key is base64 DER
SubjectPublicKeyInfo (what Mail Settings > Event Webhook shows).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class SigningKey:
    def __init__(self, curve: ec.EllipticCurve | None = None) -> None:
        self.private = ec.generate_private_key(curve or ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """The value for SENDGRID_WEBHOOK_PUBLIC_KEY."""
        der = self.private.public_key().public_bytes(
            Encoding.DER, PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def sign(self, body: bytes, timestamp: int | str | None = None) -> dict[str, str]:
        """The headers SendGrid sends with `body`."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.private.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            SIGNATURE: base64.b64encode(signature).decode("ascii"),
            TIMESTAMP: stamp,
            "Content-Type": "application/json",
            "User-Agent": "SendGrid Event API",
        }


def body_of(events: list[Any]) -> bytes:
    """A body as SendGrid posts it: a JSON list of events."""
    return json.dumps(events).encode("utf-8")
