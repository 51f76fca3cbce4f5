"""The preview: a page showing what subscribers see, served locally with live rebuilds.

Two outputs share one set of views (email at several widths, dark mode, text part, HTML
source, headers, size, checks): the live page served on 127.0.0.1, which rebuilds and
reloads itself when the issue or a template changes, and the static
build/<slug>/preview.html, which needs no server.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import re
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from email.headerregistry import Address
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2

from newsletter.audience.unsubscribe import ONE_CLICK, list_unsubscribe
from newsletter.build.checks import GMAIL_CLIP_BYTES, SIZE_WARNING_BYTES
from newsletter.build.merge_tags import fill
from newsletter.config import CONFIG_FILE, Settings, load_settings
from newsletter.errors import NewsletterError, UserError
from newsletter.issue.model import ISSUE_FILE, check_slug

if TYPE_CHECKING:
    # Only for types: build.py may import this module to write preview.html with a build.
    from newsletter.build.output import Build

PREVIEW_FILE = "preview.html"  # written by build.write_build with the other outputs
HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PORT_ATTEMPTS = 20
WIDTHS = {"wide": 800, "desktop": 600, "mobile": 375}
# What one subscriber would see; the .invalid domain can never resolve, so no click is real.
SAMPLE_VALUES = {
    "first_name": "Alex",
    "email": "alex@example.com",
    "unsubscribe_url": "https://unsubscribe.example.invalid/preview-only",
}

Scheme = Literal["light", "dark"]
Say = Callable[[str], None]


# --- what the page shows ---------------------------------------------------------------


def for_subscriber(html: str) -> str:
    """The email as the sample subscriber gets it: merge tags filled with SAMPLE_VALUES."""
    return fill(html, SAMPLE_VALUES)


_STYLE_BLOCK = re.compile(r"<style\b[^>]*>.*?</style\s*>", re.IGNORECASE | re.DOTALL)
_SCHEME_QUERY = re.compile(r"\(\s*prefers-color-scheme\s*:\s*(dark|light)\s*\)", re.IGNORECASE)
_HEAD_END = re.compile(r"</head\s*>", re.IGNORECASE)
_ALWAYS, _NEVER = "(min-width: 0px)", "(max-width: 0px)"


def emulate_color_scheme(html: str, scheme: Scheme) -> str:
    """The email as a client in light or dark mode that honours the email's own CSS renders it.

    An iframe cannot be given its own prefers-color-scheme, and it inherits the editor's
    system setting. So the email's `(prefers-color-scheme: ...)` queries are rewritten to
    always or never match, and `color-scheme` is forced so unstyled parts get the matching
    canvas. This is what Apple Mail, iOS Mail and Outlook for Mac do with dark CSS; Gmail's
    and Outlook's apps invert colours by their own rules, which this does not emulate.
    """

    def switch(match: re.Match[str]) -> str:
        return _ALWAYS if match.group(1).lower() == scheme else _NEVER

    html = _STYLE_BLOCK.sub(lambda block: _SCHEME_QUERY.sub(switch, block.group(0)), html)
    # <base target=_blank>: a click opens a tab instead of replacing the frame's content.
    head = (
        f'<base target="_blank"><meta name="color-scheme" content="{scheme}">'
        f"<style>:root {{ color-scheme: {scheme} !important; }}</style>"
    )
    found = _HEAD_END.search(html)
    if found is None:
        return head + html
    return html[: found.start()] + head + html[found.start() :]


def sample_headers(settings: Settings, build: Build) -> list[tuple[str, str]]:
    """The headers a subscriber's client shows, with the sample subscriber's values."""
    sender = settings.file.sender
    rows = [
        ("From", str(Address(sender.name, addr_spec=sender.email))),
        ("Reply-To", sender.reply_to or ""),
        ("To", str(Address(SAMPLE_VALUES["first_name"], addr_spec=SAMPLE_VALUES["email"]))),
        ("Subject", build.issue.subject),
        ("Preheader", build.issue.preheader),
        ("List-Unsubscribe", list_unsubscribe(SAMPLE_VALUES["unsubscribe_url"])),
        ("List-Unsubscribe-Post", ONE_CLICK),
    ]
    return [(name, value) for name, value in rows if value]


def size_summary(build: Build) -> dict[str, Any]:
    size = len(build.rendered.email_html.encode("utf-8"))
    level = (
        "error" if size >= GMAIL_CLIP_BYTES else "warning" if size >= SIZE_WARNING_BYTES else "ok"
    )
    return {
        "bytes": size,
        "text_bytes": len(build.rendered.text.encode("utf-8")),
        "limit": GMAIL_CLIP_BYTES,
        "warning": SIZE_WARNING_BYTES,
        "percent": round(100 * size / GMAIL_CLIP_BYTES, 1),
        "level": level,
    }


def _views(settings: Settings, build: Build) -> dict[str, Any]:
    """Everything both pages show about one build."""
    email = for_subscriber(build.rendered.email_html)
    return {
        "slug": build.slug,
        "newsletter": settings.file.newsletter.name,
        "subject": build.issue.subject,
        "date": build.issue.date,
        "light_html": emulate_color_scheme(email, "light"),
        "dark_html": emulate_color_scheme(email, "dark"),
        "source_html": build.rendered.email_html,
        "text": for_subscriber(build.rendered.text),
        "headers": sample_headers(settings, build),
        "size": size_summary(build),
        "findings": build.findings,
        "ok": build.ok,
        "sample": SAMPLE_VALUES,
        "widths": WIDTHS,
    }


def _pages() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("newsletter", "templates/preview"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_preview_report(settings: Settings, build: Build) -> str:
    """The static report: all views on one page, no server and no external CSS or script.

    No timestamp: the same build gives the same file, like the other build outputs.
    """
    return _pages().get_template("report.html.j2").render(_views(settings, build))


def _silent(_: str) -> None:
    pass


# --- the live session: the latest build or build error -----------------------------------


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

    def rebuild(self, reload_settings: bool = False) -> None:
        with self._building:
            started = time.perf_counter()
            build, error = self._try_build(reload_settings)
            seconds = time.perf_counter() - started
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
        from newsletter.build.output import make_build, write_build

        self._reload_settings = self._reload_settings or reload_settings
        try:
            if self._reload_settings:  # retried on every build until newsletter.toml loads
                self.settings = load_settings(self.settings.workspace)
                self._reload_settings = False
            build = make_build(self.settings, self.slug)
            write_build(self.settings, build)  # writes preview.html too
        except NewsletterError as error:
            return None, error.line()
        except Exception as error:  # a bug, not bad input: report it and keep serving
            self._warn(traceback.format_exc())
            return None, f"unexpected {type(error).__name__}: {error}"
        return build, None

    def _render_page(self, seconds: float) -> str:
        views = _views(self.settings, self.build) if self.build else {"slug": self.slug}
        return (
            _pages()
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
        with self._changed:
            self.closed = True
            self._changed.notify_all()


# --- watching the sources -----------------------------------------------------------------


class _Either:
    """Stops a watchfiles loop when either event is set (it only calls is_set)."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


class SourceWatcher:
    """Rebuilds on changes to the issue folder, the workspace templates or newsletter.toml."""

    def __init__(self, session: PreviewSession, poll_seconds: float = 0.5):
        self.session = session
        self.poll_ms = int(poll_seconds * 1000)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preview-watch", daemon=True)

    def watched(self) -> list[Path]:
        settings = self.session.settings
        folders = [settings.issue_dir(self.session.slug), settings.path("templates")]
        return [folder for folder in folders if folder.is_dir()]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from watchfiles import watch

        config = self.session.settings.workspace / CONFIG_FILE
        config_stamp = _stamp(config)
        while not self._stopped.is_set():
            folders = self.watched()
            restart = threading.Event()
            if not folders:  # the issue folder was removed: wait for it to come back
                self._stopped.wait(self.poll_ms / 1000)
                continue
            # inotify cannot see a templates/ folder that does not exist yet, and an editor's
            # save-by-rename drops a watch on a single file: both are polled between events.
            changes_seen = watch(
                *folders,
                stop_event=_Either(self._stopped, restart),
                rust_timeout=self.poll_ms,
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            try:
                for changes in changes_seen:
                    config_changed = _stamp(config) != config_stamp
                    config_stamp = _stamp(config)
                    if self.watched() != folders:
                        restart.set()
                    if changes or config_changed or restart.is_set():
                        self.session.rebuild(reload_settings=config_changed)
            except (OSError, RuntimeError):  # a watched folder vanished mid-watch: start over
                self._stopped.wait(self.poll_ms / 1000)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


# --- the HTTP server ----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False  # never share a port with another server
    session: PreviewSession


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "newsletter-preview"
    KEEPALIVE_SECONDS = 15.0

    def do_GET(self) -> None:
        session = self.server.session
        if not self._host_is_local():
            self._send(HTTPStatus.FORBIDDEN, "text/plain", b"preview serves 127.0.0.1 only\n")
            return
        route = self.path.split("?", 1)[0]
        if route == "/":
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", session.page.encode("utf-8"))
        elif route == "/events":
            self._stream_events(session)
        elif route == "/state.json":
            body = json.dumps(session.state()).encode("utf-8")
            self._send(HTTPStatus.OK, "application/json", body)
        elif route == f"/{PREVIEW_FILE}" and session.build:
            report = render_preview_report(session.settings, session.build).encode("utf-8")
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", report)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _host_is_local(self) -> bool:
        # Refuses pages on other sites that point a DNS name at 127.0.0.1 (DNS rebinding).
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return host in {"127.0.0.1", "localhost", ""}

    def _send(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _stream_events(self, session: PreviewSession) -> None:
        """Server-Sent Events: one `build` event per new build id, comments to keep alive."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        seen: str | None = None
        try:
            self.wfile.write(b"retry: 1000\n\n")
            while not session.closed:
                current = session.wait_for_change(seen, self.KEEPALIVE_SECONDS)
                if current != seen:
                    self.wfile.write(f"event: build\ndata: {current}\n\n".encode())
                    seen = current
                else:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            return

    def log_message(self, format: str, *args: Any) -> None:
        """Requests are not worth a line each in the editor's terminal."""


def bind(port: int, attempts: int = PORT_ATTEMPTS) -> _Server:
    """A server on 127.0.0.1:port, or the next free port after it; port 0 takes any free one."""
    candidates = [0] if port == 0 else range(port, min(port + attempts, 65536))
    for candidate in candidates:
        try:
            return _Server((HOST, candidate), _Handler)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                continue
            if error.errno == errno.EACCES:
                raise UserError(
                    f"not allowed to listen on port {candidate}",
                    where="--port",
                    fix="use a port above 1023, e.g. --port 8000",
                ) from None
            raise
    raise UserError(
        f"ports {port}-{candidates[-1]} on {HOST} are all in use",
        where="--port",
        fix="choose another with --port, or --port 0 for any free port",
    )


class PreviewServer:
    """The live preview: HTTP on 127.0.0.1 plus the watcher that rebuilds."""

    def __init__(self, session: PreviewSession, port: int = DEFAULT_PORT):
        self.session = session
        self.requested_port = port
        self._http = bind(port)
        self._http.session = session
        self.watcher = SourceWatcher(session)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._http.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C raises KeyboardInterrupt here); always clean up."""
        self.watcher.start()
        try:
            self._http.serve_forever(poll_interval=0.2)
        finally:
            self.close()

    def start(self) -> None:
        """Serve from background threads (for tests and embedding)."""
        self.watcher.start()
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.session.close()
        self.watcher.stop()
        if self._thread is not None:
            self._http.shutdown()
            self._thread.join(timeout=5)
        self._http.server_close()
