"""The live preview's HTTP server on 127.0.0.1: the page, build events, the static report.

The page reloads itself when the watcher rebuilds the issue (Server-Sent Events on /events).
"""

from __future__ import annotations

import errno
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from newsletter.build.output import PREVIEW as PREVIEW_FILE
from newsletter.build.report_page import render_preview_report
from newsletter.errors import UserError
from newsletter.preview.images import ImageCache, declared_sizes, local_images
from newsletter.preview.session import PreviewSession
from newsletter.preview.watcher import SourceWatcher

HOST = "127.0.0.1"
DEFAULT_PORT = 8000
PORT_ATTEMPTS = 20


IMAGES = "/images/"
_CONTROLS = '<nav class="controls" aria-label="Preview controls">'


RESULTS = "/results"
RESULTS_LINK = (
    f'<a class="results-link" href="{RESULTS}" target="_blank">Results: opens and clicks</a>'
)


@dataclass(frozen=True)
class Results:
    """What the issue's results page needs, given by the caller (preview knows no reports)."""

    available: Callable[[], bool]
    page: Callable[[], str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_port = False  # never share a port with another server
    session: PreviewSession
    images: ImageCache | None
    image_urls: dict[str, str]  # the page's image addresses by key
    results: Results | None


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
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", self._page(session).encode())
        elif route.startswith(IMAGES) and self.server.images is not None:
            self._send_image(self.server.images, route.removeprefix(IMAGES))
        elif route == "/events":
            self._stream_events(session)
        elif route == "/state.json":
            body = json.dumps(session.state()).encode("utf-8")
            self._send(HTTPStatus.OK, "application/json", body)
        elif route == RESULTS:
            self._send_results(self.server.results)
        elif route == f"/{PREVIEW_FILE}" and session.build:
            report = render_preview_report(session.settings, session.build).encode("utf-8")
            self._send(HTTPStatus.OK, "text/html; charset=utf-8", report)
        else:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

    def _host_is_local(self) -> bool:
        # Refuses pages on other sites that point a DNS name at 127.0.0.1 (DNS rebinding).
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return host in {"127.0.0.1", "localhost", ""}

    def _page(self, session: PreviewSession) -> str:
        """The live page; with an image cache, the email's images come from this server."""
        page = session.page
        results = self.server.results
        if results is not None and results.available():
            page = page.replace(_CONTROLS, _CONTROLS + RESULTS_LINK, 1)
        if self.server.images is None:
            return page
        page, urls = local_images(page, IMAGES)
        self.server.image_urls.update(urls)
        return page

    def _send_results(self, results: Results | None) -> None:
        if results is None or not results.available():
            body = (
                b"no results yet: they appear once the issue is sent and SendGrid's events arrive\n"
            )
            self._send(HTTPStatus.NOT_FOUND, "text/plain; charset=utf-8", body)
            return
        self._send(HTTPStatus.OK, "text/html; charset=utf-8", results.page().encode("utf-8"))

    def _send_image(self, images: ImageCache, key: str) -> None:
        url = self.server.image_urls.get(key)
        if url is None:
            self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not an image of this issue\n")
            return
        build = self.server.session.build
        size = declared_sizes(build.rendered.email_html).get(url) if build else None
        image = images.image(url, size or (600, 400))
        self._send(HTTPStatus.OK, image.content_type, image.body)

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

    def __init__(
        self,
        session: PreviewSession,
        port: int = DEFAULT_PORT,
        images: ImageCache | None = None,
        results: Results | None = None,
    ):
        self.session = session
        self.requested_port = port
        self._http = bind(port)
        self._http.session = session
        self._http.images = images  # None: the browser loads the images from their addresses
        self._http.image_urls = {}
        self._http.results = results
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
