"""/webhooks/sendgrid: SendGrid's signed event webhook (see the module's routes)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
