"""A real uvicorn server on 127.0.0.1 running `newsletter serve`'s application."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn

from newsletter.config import Settings
from newsletter.web.app import LOOPBACK_HOSTS, create_app


@contextmanager
def serve(
    settings: Settings, *, clock: Callable[[], float] = time.time, busy_timeout_ms: int = 10_000
) -> Iterator[str]:
    """Serve the workspace on a free port; yields the base URL (http://127.0.0.1:PORT)."""
    application = create_app(
        settings, clock=clock, extra_hosts=LOOPBACK_HOSTS, busy_timeout_ms=busy_timeout_ms
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        application, access_log=False, lifespan="on", log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
