"""The live preview session: one issue's latest build (or build error) and the live page."""

from __future__ import annotations

import datetime as dt
import html
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from newsletter.build.output import make_build, write_build
from newsletter.build.report_page import WIDTHS, page_views, pages
from newsletter.build.result import Build
from newsletter.config import Settings, load_settings
from newsletter.errors import NewsletterError, UserError
from newsletter.issue.model import ISSUE_FILE, check_slug

Say = Callable[[str], None]


def _silent(_: str) -> None:
    pass


class PreviewSession:
    """One issue's latest build (or build error) and an id that changes with every rebuild."""

    def __init__(
        self, settings: Settings, slug: str, say: Say | None = None, warn: Say | None = None
    ):
        self.settings = settings
        self.slug = check_slug(slug)
        self._say, self._warn = say or _silent, warn or _silent
        self._token = secrets.token_hex(3)  # a restarted server never repeats an old build id
        self._generation = 0
        self._building = threading.Lock()
        self._changed = threading.Condition()
        self.build: Build | None = None
        self.error: str | None = None
        self.page = ""
        self.closed = False
        self._reload_settings = False
        self._held: threading.Timer | None = None  # a failed build waiting to be shown

    @property
    def build_id(self) -> str:
        return f"{self._token}-{self._generation}"

    def start(self) -> None:
        """The first build; only a missing issue stops the preview, other errors go on the page."""
        issue_file = self.settings.issue_dir(self.slug) / ISSUE_FILE
        if not issue_file.is_file():
            raise UserError(
                "file not found",
                where=issue_file,
                fix=f"start it with `newsletter new {self.slug}`",
            )
        self.rebuild()

    def rebuild(self, reload_settings: bool = False, hold_errors: float = 0.0) -> None:
        """Build and show the result; write build/SLUG/ after the page is updated.

        A failed build is shown only after `hold_errors` seconds without a newer rebuild:
        an editor that saves in two steps leaves a half-written file for an instant, and
        the next save's build replaces the error before anyone sees it.
        """
        with self._building:
            self._cancel_held()
            started = time.perf_counter()
            build, error = self._try_build(reload_settings)
            seconds = time.perf_counter() - started
            if error is not None and hold_errors > 0:
                self._held = threading.Timer(hold_errors, self._show_held, (error, seconds))
                self._held.daemon = True
                self._held.start()
                return
            self._show(build, error, seconds)
            if build is not None and (failed := self._write(build)) is not None:
                self._show(None, failed, seconds)

    def _cancel_held(self) -> None:
        if self._held is not None:
            self._held.cancel()
            self._held = None

    def _show_held(self, error: str, seconds: float) -> None:
        with self._building:
            if self._held is threading.current_thread():  # no newer rebuild in the meantime
                self._held = None
                self._show(None, error, seconds)

    def _show(self, build: Build | None, error: str | None, seconds: float) -> None:
        with self._changed:
            self._generation += 1
            self.error = error
            self.build = build or self.build
            self.page = self._render_page(seconds)
            self._changed.notify_all()
            number = self._generation
        if error:
            self._warn(f"build #{number} failed (shown on the page): {error}")
        else:
            findings = build.findings if build else []
            errors = sum(finding.level == "error" for finding in findings)
            self._say(
                f"build #{number} in {seconds:.2f} s: {errors} check error(s), "
                f"{len(findings) - errors} warning(s)"
            )

    def _try_build(self, reload_settings: bool) -> tuple[Build | None, str | None]:
        self._reload_settings = self._reload_settings or reload_settings
        try:
            if self._reload_settings:  # retried on every build until newsletter.toml loads
                self.settings = load_settings(self.settings.workspace)
                self._reload_settings = False
            return make_build(self.settings, self.slug), None
        except NewsletterError as error:
            return None, error.line()
        except Exception as error:  # a bug, not bad input: report it and keep serving
            self._warn(traceback.format_exc())
            return None, f"unexpected {type(error).__name__}: {error}"

    def _write(self, build: Build) -> str | None:
        """build/SLUG/ (preview.html too), after the page shows the build: an error or None."""
        try:
            write_build(self.settings, build)
        except NewsletterError as error:
            return error.line()
        except Exception as error:
            self._warn(traceback.format_exc())
            return f"unexpected {type(error).__name__}: {error}"
        return None

    def _render_page(self, seconds: float) -> str:
        """The live page; a page that fails to render still shows why, and the server goes on."""
        try:
            return self._render_live(seconds)
        except Exception as error:  # a bug in the page itself: never take the preview down
            self._warn(traceback.format_exc())
            problem = f"the preview page failed: {type(error).__name__}: {error}"
            self.error = f"{self.error}\n{problem}" if self.error else problem
            return _fallback_page(self.build_id, self.slug, self.error)

    def _render_live(self, seconds: float) -> str:
        # A first build that failed has no views: the page still needs the widths it offers.
        views = (
            page_views(self.settings, self.build)
            if self.build
            else {"slug": self.slug, "widths": WIDTHS}
        )
        return (
            pages()
            .get_template("live.html.j2")
            .render(
                views,
                build_id=self.build_id,
                generation=self._generation,
                error=self.error,
                seconds=f"{seconds:.2f}",
                built_at=dt.datetime.now().astimezone().strftime("%H:%M:%S"),
                has_build=self.build is not None,
            )
        )

    def wait_for_change(self, seen: str | None, timeout: float) -> str:
        """Block until the build id differs from `seen` (or timeout); return the current id."""
        with self._changed:
            self._changed.wait_for(lambda: self.build_id != seen or self.closed, timeout)
            return self.build_id

    def state(self) -> dict[str, Any]:
        with self._changed:
            return {"build": self.build_id, "ok": self.error is None, "error": self.error}

    def close(self) -> None:
        with self._building:
            self._cancel_held()
        with self._changed:
            self.closed = True
            self._changed.notify_all()


def _fallback_page(build_id: str, slug: str, error: str) -> str:
    """A bare page with the error and the reload script, when the real page cannot render."""
    lines = "".join(f"<code>{html.escape(line)}</code><br>" for line in error.splitlines())
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Preview · {html.escape(slug)}</title></head>"
        f'<body data-build="{html.escape(build_id)}">'
        f'<div id="build-error" role="alert"><strong>The build failed.</strong><br>{lines}'
        "Fix the file and save it: this page reloads by itself.</div>"
        "<script>const s = new EventSource('/events'); s.addEventListener('build', (e) => {"
        " if (e.data !== document.body.dataset.build) location.reload(); });</script>"
        "</body></html>"
    )
