"""The one place `add` touches the network: a careful HTTP GET for article pages and feeds."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from newsletter import __version__
from newsletter.errors import SourceError

if TYPE_CHECKING:
    import httpx

USER_AGENT = (
    f"newsletter/{__version__} (editorial link collector; "
    "fetches one page per article an editor picked)"
)
TIMEOUT_ENV = "NEWSLETTER_HTTP_TIMEOUT"
DEFAULT_TIMEOUT = 15.0
MAX_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
ACCEPT = (
    "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,"
    "application/xml;q=0.9,text/plain;q=0.8,*/*;q=0.5"
)


@dataclass(frozen=True)
class Fetched:
    """What came back: the final address after redirects, the bytes and the declared type."""

    url: str
    content: bytes
    content_type: str | None
    charset: str | None


def default_timeout() -> float:
    """Seconds to wait for a server, from $NEWSLETTER_HTTP_TIMEOUT or the default."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise SourceError(
            f"{TIMEOUT_ENV}={raw!r} is not a number of seconds", fix="set it to e.g. 15"
        ) from None
    return value if value > 0 else DEFAULT_TIMEOUT


def fetch(url: str, *, timeout: float | None = None, max_bytes: int = MAX_BYTES) -> Fetched:
    """GET `url` following redirects; every failure is a SourceError naming the URL."""
    import httpx

    seconds = timeout if timeout is not None else default_timeout()
    guard = RedirectGuard(url)
    try:
        with (
            httpx.Client(
                follow_redirects=True,
                max_redirects=MAX_REDIRECTS,
                timeout=httpx.Timeout(seconds),
                headers={"User-Agent": USER_AGENT, "Accept": ACCEPT},
                event_hooks={"request": [guard.check]},
            ) as client,
            client.stream("GET", url) as response,
        ):
            _raise_for_status(url, response)
            content = _read_capped(url, response, max_bytes)
            return Fetched(
                url=str(response.url),
                content=content,
                content_type=_media_type(response.headers.get("content-type")),
                charset=response.charset_encoding,
            )
    except httpx.TimeoutException:
        raise SourceError(
            f"no answer within {seconds:g} s",
            where=url,
            fix=f"try again later, or allow more time with --timeout or {TIMEOUT_ENV}",
        ) from None
    except httpx.TooManyRedirects:
        raise SourceError(
            f"more than {MAX_REDIRECTS} redirects",
            where=url,
            fix="open the address in a browser and give the final one",
        ) from None
    except httpx.ConnectError as error:
        raise SourceError(
            f"cannot connect ({_reason(error)})",
            where=url,
            fix="check the address and your network connection",
        ) from None
    except httpx.HTTPError as error:
        raise SourceError(
            f"download failed ({_reason(error)})", where=url, fix="try again later"
        ) from None


# --- redirects into the editor's own network (SSRF) ---------------------------------------------

Resolve = Callable[[str], list[str]]


def resolve(host: str) -> list[str]:
    """The IP addresses of `host` (an IP literal is its own); [] when it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})


def is_internal(address: str) -> bool:
    """Loopback, link-local, private or unspecified: somewhere a public page must not send us."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_unspecified


def internal_address(url: str, resolve: Resolve = resolve) -> str | None:
    """The first internal address the host of `url` resolves to, else None."""
    host = urlsplit(url).hostname or ""
    return next((address for address in resolve(host) if is_internal(address)), None)


class RedirectGuard:
    """Refuses redirects into loopback, link-local, private or unspecified networks.

    A public page that redirects to 127.0.0.1, another local port or the office network
    would otherwise have that page's text written into issue.yaml. When the address the
    editor gave is itself internal (a local test server, an intranet page), redirects
    within reach are the editor's own business and are followed.
    """

    def __init__(self, url: str, resolve: Resolve = resolve) -> None:
        self.url = url
        self.resolve = resolve
        self._origin_internal: bool | None = None
        self._requests = 0

    @property
    def origin_internal(self) -> bool:
        if self._origin_internal is None:
            self._origin_internal = internal_address(self.url, self.resolve) is not None
        return self._origin_internal

    def check(self, request: httpx.Request) -> None:
        """httpx calls this before every request; all but the first are redirect targets."""
        self._requests += 1
        if self._requests == 1 or self.origin_internal:
            return
        target = str(request.url)
        address = internal_address(target, self.resolve)
        if address is not None:
            host = urlsplit(target).hostname
            shown = target if address == host else f"{target} ({host} is {address})"
            raise SourceError(
                f"redirects to {shown}, a local or private network address; not followed",
                where=self.url,
                fix="give the address of the article itself if you trust it",
            )


def _raise_for_status(url: str, response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    phrase = response.reason_phrase or "error"
    if response.status_code in (404, 410):
        fix = "check the address; the page may have moved or been removed"
    elif response.status_code in (401, 403):
        fix = "the site refuses automated access; save the page and add the .html file with --url"
    else:
        fix = "try again later"
    raise SourceError(f"HTTP {response.status_code} {phrase}", where=url, fix=fix)


def _read_capped(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(url, max_bytes)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(url, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(url: str, max_bytes: int) -> SourceError:
    return SourceError(
        f"larger than {max_bytes // (1024 * 1024)} MB, not an article page",
        where=url,
        fix="give the address of the article itself",
    )


def _media_type(header: str | None) -> str | None:
    if not header:
        return None
    return header.split(";", 1)[0].strip().lower() or None


def _reason(error: Exception) -> str:
    text = str(error).strip()
    # httpx wraps OS errors as "[Errno 111] Connection refused"; keep the readable part.
    if "] " in text and text.startswith("[Errno"):
        text = text.split("] ", 1)[1]
    return text.splitlines()[0] if text else type(error).__name__
