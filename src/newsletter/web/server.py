"""Running the application under uvicorn for `newsletter serve`."""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn

from newsletter.config import Settings
from newsletter.errors import UserError

LOOPBACK_NAMES = ("localhost",)


class QuietServer(uvicorn.Server):
    """Ctrl-C or SIGTERM stop the server cleanly and the command exits 0.

    uvicorn re-raises the signal after shutting down, which would end the process with a
    traceback (SIGINT) or as killed (SIGTERM).
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, or one line saying why it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UserError(
            f"cannot listen on {host!r} ({exc.strerror})",
            where="--host",
            fix="give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0",
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UserError(
            f"cannot listen on {host}:{port} ({exc.strerror})",
            where="--port",
            fix="pick another port with --port, or stop what is using it",
        ) from None
    return sock


def run(settings: Settings, host: str, port: int, say: Callable[[str], None]) -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    from newsletter.web.app import LOOPBACK_HOSTS, create_app

    extra = LOOPBACK_HOSTS if is_loopback(host) else ()
    application = create_app(settings, extra_hosts=extra)
    sock = bind(host, port)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = uvicorn.Config(
        application,
        access_log=False,  # its lines carry query strings, which carry tokens
        proxy_headers=False,  # the application applies [web] trusted_proxies itself
        server_header=False,
        lifespan="on",
        log_level="warning",
    )
    bound_port = sock.getsockname()[1]
    say(f"serving {settings.file.newsletter.name} on http://{host}:{bound_port}/ (Ctrl-C stops)")
    try:
        QuietServer(config).run(sockets=[sock])
    finally:
        sock.close()
    say("stopped")
