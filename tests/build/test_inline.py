"""premailer's defaults break MJML output; prove our configuration avoids each trap."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from newsletter.build.inline import inline_css

PAGE = """<!doctype html>
<html lang="en"><head><title>t</title>
<link rel="stylesheet" href="http://127.0.0.1:{port}/remote.css">
<style type="text/css">@media only screen and (max-width:480px) {{ .col {{ width:100% !important; }} }}</style>
<style type="text/css">/* newsletter:inline */ h1 {{ color: #123456; }} .x {{ color: red !important; }} a:hover {{ color: blue; }}</style>
</head><body><h1 class="x-title">Hi</h1><a href="#top" id="a">top</a><a href="https://example.org/#frag">out</a>
<p class="x">strong</p></body></html>"""  # noqa: E501


@pytest.fixture
def stylesheet_server() -> Iterator[tuple[int, list[str]]]:
    requests: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"h1 { color: green; }")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], requests
    server.shutdown()


def test_premailer_traps(
    stylesheet_server: tuple[int, list[str]], caplog: pytest.LogCaptureFixture
) -> None:
    port, requests = stylesheet_server
    with caplog.at_level(logging.DEBUG):
        out = inline_css(PAGE.format(port=port))

    assert out.startswith("<!doctype html>"), "doctype kept"
    assert "width:100% !important" in out, "!important kept in @media rules"
    assert 'href="#top"' in out, "#anchors not rewritten"
    assert 'href="https://example.org/#frag"' in out
    assert requests == [], "no remote stylesheet fetched"
    assert '<h1 class="x-title" style="color:#123456">' in out, "our block is inlined"
    assert "color:red !important" in out, "!important kept on inlined rules"
    assert "newsletter:inline" not in out and "data-premailer" not in out
    assert not [r for r in caplog.records if r.name.startswith(("cssutils", "CSSUTILS"))]


def test_mjml_blocks_are_not_touched() -> None:
    page = (
        "<!doctype html><html><head><style>.mj-column-per-50 { width:50% !important; }"
        " p { margin: 13px 0; }</style></head><body><p>x</p></body></html>"
    )
    out = inline_css(page)
    assert "<p>x</p>" in out, "MJML's reset styles are not inlined into every element"
    assert ".mj-column-per-50 { width:50% !important; }" in out
