"""PNG screenshots of a built email with headless Chromium, driven by Playwright."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from newsletter.build.report_page import Scheme, for_subscriber
from newsletter.build.result import Build
from newsletter.errors import UserError
from newsletter.preview.images import ImageCache, declared_sizes

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Route

CHROMIUM_ENV = "NEWSLETTER_CHROMIUM"
DEFAULT_CHROMIUM = Path("/usr/bin/chromium")
# No sandbox: CI containers run as root; the rest keeps a headless run quiet and offline.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
SCALE = 2  # device pixels per CSS pixel: crisp on review screens; a 600px email is 1200 PNG px
MOBILE_BELOW = 480  # the width below which the email's own media queries stack the columns
LOAD_TIMEOUT_MS = 30_000
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@dataclass(frozen=True)
class Shot:
    name: str
    width: int
    scheme: Scheme


SHOTS = (
    Shot("600", 600, "light"),
    Shot("375", 375, "light"),
    Shot("600-dark", 600, "dark"),
    Shot("375-dark", 375, "dark"),
)


def find_chromium(
    environ: Mapping[str, str] | None = None, default: Path = DEFAULT_CHROMIUM
) -> Path:
    """$NEWSLETTER_CHROMIUM, else Debian's /usr/bin/chromium, else `chromium` on PATH."""
    env = os.environ if environ is None else environ
    if configured := env.get(CHROMIUM_ENV, "").strip():
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise UserError(
                f"Chromium not found at {path}",
                where=CHROMIUM_ENV,
                fix=f"install it with `apt-get install chromium`, or point {CHROMIUM_ENV} "
                "at a Chromium executable",
            )
        return path
    if default.is_file():
        return default
    for name in ("chromium", "chromium-browser"):
        if found := shutil.which(name, path=env.get("PATH")):
            return Path(found)
    raise UserError(
        f"Chromium is needed for screenshots and was not found at {default} or on PATH",
        fix=f"install it with `apt-get install chromium`, or set {CHROMIUM_ENV}=/path/to/chromium",
    )


@contextmanager
def launch_browser(executable: Path) -> Iterator[Browser]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        raise UserError(
            "screenshots need the Python package playwright",
            fix="install it with `pip install playwright` (it drives the system Chromium; "
            "no `playwright install` needed)",
        ) from None
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(
                executable_path=str(executable), args=list(CHROMIUM_ARGS)
            )
        except Error as error:
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else "no reason"
            raise UserError(
                f"Chromium at {executable} did not start: {first_line}",
                where=CHROMIUM_ENV if os.environ.get(CHROMIUM_ENV) else None,
                fix="check that it runs (`chromium --headless --version`)",
            ) from None
        try:
            yield browser
        finally:
            browser.close()


def _requests_from(html: str, images: ImageCache | None) -> Callable[[Route], None]:
    """Loopback loads; the email's own images come from `images`; nothing else loads."""
    sizes = declared_sizes(html) if images is not None else {}

    def route_request(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in _LOOPBACK:
            route.continue_()
        elif images is not None and url in sizes:
            image = images.image(url, sizes[url])
            route.fulfill(status=200, content_type=image.content_type, body=image.body)
        else:
            route.abort("blockedbyclient")

    return route_request


def open_email(
    browser: Browser,
    html: str,
    width: int,
    scheme: Scheme = "light",
    images: ImageCache | None = None,
) -> Page:
    """A page showing `html` as a client of that width and colour scheme would.

    Below MOBILE_BELOW it is a phone (meta viewport honoured, touch); dark mode is Chromium's
    own prefers-color-scheme emulation, so the email's dark CSS applies as in Apple Mail.
    The email's images come from `images` (none load without it). The caller closes
    page.context.
    """
    mobile = width < MOBILE_BELOW
    context = browser.new_context(
        viewport={"width": width, "height": 800},
        device_scale_factor=SCALE,
        is_mobile=mobile,
        has_touch=mobile,
        color_scheme=scheme,
        java_script_enabled=False,  # email clients run no script, and neither does this
    )
    context.route("**/*", _requests_from(html, images))
    page = context.new_page()
    page.set_default_timeout(LOAD_TIMEOUT_MS)
    page.set_content(html, wait_until="load")
    return page


def take_screenshots(
    build: Build, directory: Path, executable: Path, images: ImageCache | None = None
) -> list[Path]:
    """Full-page PNGs of the email as the sample subscriber sees it: <slug>-<shot>.png."""
    directory.mkdir(parents=True, exist_ok=True)
    html = for_subscriber(build.rendered.email_html)
    written = []
    with launch_browser(executable) as browser:
        for shot in SHOTS:
            page = open_email(browser, html, shot.width, shot.scheme, images)
            try:
                target = directory / f"{build.slug}-{shot.name}.png"
                page.screenshot(path=str(target), full_page=True)
                written.append(target)
            finally:
                page.context.close()
    return written
