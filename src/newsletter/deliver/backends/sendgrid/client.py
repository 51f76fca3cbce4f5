"""The one way to reach SendGrid: the official client, its key, and its errors as one line.

Mail send, scheduled batches and suppressions all take their client and error texts from
here, so a refused key or a bad host reads the same whatever was being done.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from newsletter.errors import AuthError, DeliveryError

if TYPE_CHECKING:
    from newsletter.config import Settings

DEFAULT_TIMEOUT = 60.0  # seconds; the client has none, and a hung socket would hang cron
_CLIENT_LOGGERS = ("python_http_client", "python_http_client.client")


def api_client(key: str, host: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """The official client for `host`, with a timeout and its key-logging loggers quieted."""
    from sendgrid import SendGridAPIClient

    quiet_client_loggers()
    client = SendGridAPIClient(key, host=host.rstrip("/"))
    client.client.timeout = timeout
    return client


def quiet_client_loggers() -> None:
    """At DEBUG the client logs the Authorization header, i.e. the API key."""
    for name in _CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        # Set explicitly, not inherited: a root logger turned to DEBUG later must not reach it.
        if logger.level <= logging.DEBUG:
            logger.setLevel(logging.INFO)


def masked(text: str, secret: str) -> str:
    """`text` with the secret blotted out in every form it may be quoted in."""
    if not secret:
        return text
    forms = {
        secret,
        repr(secret)[1:-1],
        json.dumps(secret)[1:-1],
        secret.encode("unicode_escape").decode("ascii"),
        repr(secret.encode("utf-8", "backslashreplace"))[2:-1],
    }
    for form in sorted(forms, key=len, reverse=True):
        if form:
            text = text.replace(form, "SG.***")
    return text


def refused(status: int, text: str, what: str, permission: str) -> DeliveryError:
    """401 and 403 need different fixes: a bad key, or a good key lacking a permission.

    An account out of credits also answers 401; its key is fine, so it is not an AuthError.
    """
    if status == 401 and "credits" in text.lower():
        return DeliveryError(
            f"SendGrid refused to {what}: the account has no email credits left (401: {text})",
            fix="upgrade the SendGrid plan or wait until its credits renew, then run the "
            "same command again; nothing of this batch was sent",
        )
    if status == 401:
        return AuthError(
            f"SendGrid refused the API key for {what} (401: {text})",
            fix="check SENDGRID_API_KEY in .env: the key is wrong, expired or revoked",
        )
    return AuthError(
        f"the API key may not {what} (403: {text})",
        fix=f"give the key the {permission} permission in SendGrid's API key settings",
    )


def error_text(body: bytes | str | None) -> str:
    """SendGrid's errors as one line: "message (field); message"."""
    if not body:
        return ""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        errors = json.loads(raw)["errors"]
        parts = []
        for error in errors:
            field = error.get("field")
            message = str(error.get("message", "")).strip()
            parts.append(f"{message} (field {field})" if field else message)
        return "; ".join(part for part in parts if part)
    except (ValueError, KeyError, TypeError, AttributeError):
        return " ".join(raw.split())[:500]


def network_reason(exc: BaseException, secret: str) -> str:
    """What went wrong on the way, in words: urllib's `<urlopen error [Errno 111] ...>`
    becomes "connection refused"."""
    reason: object = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError):
        return "no answer in time"
    if isinstance(reason, OSError) and reason.strerror:
        return masked(reason.strerror.lower(), secret)
    return masked(str(reason), secret) or type(exc).__name__


def api_key(settings: Settings, otherwise: str) -> str:
    """The SendGrid key from the environment or .env; `otherwise` completes the fix."""
    key = settings.secrets.sendgrid_api_key
    if key is None:
        raise settings.missing_secret(
            "SENDGRID_API_KEY", f"use a key with Mail Send permission{otherwise}"
        )
    return key.get_secret_value()
