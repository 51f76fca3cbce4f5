"""The one-click unsubscribe headers (RFC 8058), as every message and the preview show them."""

from __future__ import annotations

ONE_CLICK = "List-Unsubscribe=One-Click"  # the List-Unsubscribe-Post value


def list_unsubscribe(url: str) -> str:
    """The List-Unsubscribe value: the one-click https URL only (RFC 8058 POSTs to it)."""
    return f"<{url}>"
