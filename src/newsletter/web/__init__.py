"""The reader's side (`newsletter serve`): unsubscribe, signup, archive, SendGrid webhook.

`newsletter.web:app` is the application for the workspace found from the current folder
(or $NEWSLETTER_WORKSPACE), for running under uvicorn or gunicorn workers directly.
"""

from __future__ import annotations

import threading

from starlette.types import ASGIApp, Receive, Scope, Send


class _WorkspaceApp:
    """Loads the workspace at the first request, so importing this module reads nothing."""

    def __init__(self) -> None:
        self._app: ASGIApp | None = None
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from newsletter.config import load_settings
                    from newsletter.web.app import create_app

                    self._app = create_app(load_settings())
        await self._app(scope, receive, send)


app = _WorkspaceApp()
