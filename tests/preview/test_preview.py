"""The preview without a browser: page content, static report, live server over HTTP, CLI errors."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import html as lxml_html

from newsletter.build.output import make_build, write_build
from newsletter.build.report_page import SAMPLE_VALUES, emulate_color_scheme, sample_headers
from newsletter.config import load_settings
from newsletter.errors import UserError
from newsletter.preview.screenshots import find_chromium
from newsletter.preview.server import PREVIEW_FILE, PreviewServer, bind
from newsletter.preview.session import PreviewSession
from tests._cli import run

WAIT_SECONDS = 15.0


def _issue(workspace: Path) -> Path:
    return workspace / "issues" / "sample" / "issue.yaml"


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode("utf-8")


def _wait_for(condition: object, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def server(workspace: Path) -> Iterator[PreviewServer]:
    session = PreviewSession(load_settings(workspace), "sample")
    session.start()
    preview = PreviewServer(session, port=0)
    preview.start()
    yield preview
    preview.close()


# --- what the page shows -------------------------------------------------------------------

DARK_CSS = """<html><head><style>
@media (prefers-color-scheme: dark) { .a { color: white; } }
@media screen and (prefers-color-scheme: light) { .a { color: black; } }
</style></head><body><p>(prefers-color-scheme: dark) in text stays</p></body></html>"""


def test_dark_emulation_switches_the_emails_own_queries() -> None:
    dark = emulate_color_scheme(DARK_CSS, "dark")
    assert "@media (min-width: 0px) { .a { color: white; } }" in dark
    assert "@media screen and (max-width: 0px) { .a { color: black; } }" in dark
    assert "<p>(prefers-color-scheme: dark) in text stays</p>" in dark
    assert 'content="dark"' in dark and "color-scheme: dark !important" in dark
    light = emulate_color_scheme(DARK_CSS, "light")
    assert "@media (max-width: 0px) { .a { color: white; } }" in light
    assert "color-scheme: light !important" in light
    assert light.index('<base target="_blank">') < light.index("</head>")


def test_headers_show_the_sample_subscriber(workspace: Path) -> None:
    settings = load_settings(workspace)
    headers = dict(sample_headers(settings, make_build(settings, "sample")))
    assert headers["From"] == "The Balkan Brief <newsletter@example.org>"
    assert headers["To"] == "Alex <alex@example.com>"
    assert headers["Subject"] == "Albania raid on Ashraf 3 sparks protests across Europe"
    assert headers["Preheader"].startswith("Rallies in ten cities")
    assert headers["List-Unsubscribe"] == f"<{SAMPLE_VALUES['unsubscribe_url']}>"
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_static_report_holds_every_view_and_nothing_external(workspace: Path) -> None:
    settings = load_settings(workspace)
    build = make_build(settings, "sample")
    path = write_build(settings, build) / PREVIEW_FILE
    assert path == workspace / "build" / "sample" / PREVIEW_FILE
    text = path.read_text(encoding="utf-8")
    document = lxml_html.document_fromstring(text)
    frames = {frame.get("id"): frame.get("srcdoc") for frame in document.iter("iframe")}
    assert set(frames) == {"email-desktop", "email-mobile", "email-dark"}
    assert all("Hi Alex," in doc and "%%" not in doc for doc in frames.values())
    assert "@media (min-width: 0px)" in frames["email-dark"]
    assert document.get_element_by_id("text-part").text_content() == build.rendered.text.replace(
        "%%first_name%%", "Alex"
    ).replace("%%unsubscribe_url%%", SAMPLE_VALUES["unsubscribe_url"])
    assert document.get_element_by_id("html-source").text_content() == build.rendered.email_html
    size = len(build.rendered.email_html.encode())
    assert f"{size:,} bytes" in document.get_element_by_id("size").text_content()
    assert "[placeholder]" in document.get_element_by_id("checks").text_content()
    # Nothing of the page's own comes from elsewhere: no stylesheet links, no script files.
    assert not document.xpath("//link | //script[@src] | //img")
    assert "@import" not in text
    assert document.xpath("//meta[@http-equiv='Content-Security-Policy']")
    assert path.stat().st_mode & 0o777 == 0o644
    assert not list(path.parent.glob(f".{PREVIEW_FILE}.*")), "no staging file left behind"


def test_static_report_is_deterministic(workspace: Path) -> None:
    settings = load_settings(workspace)
    first = (write_build(settings, make_build(settings, "sample")) / PREVIEW_FILE).read_bytes()
    assert (
        write_build(settings, make_build(settings, "sample")) / PREVIEW_FILE
    ).read_bytes() == first


# --- the live server over plain HTTP -------------------------------------------------------


def test_server_serves_the_page_state_and_report(server: PreviewServer) -> None:
    status, page = _get(server.url)
    assert status == 200
    assert "Albania raid on Ashraf 3 sparks protests across Europe" in page
    assert f'data-build="{server.session.build_id}"' in page
    assert json.loads(_get(server.url + "state.json")[1]) == {
        "build": server.session.build_id,
        "ok": True,
        "error": None,
    }
    assert 'id="email-desktop"' in _get(server.url + PREVIEW_FILE)[1]
    with pytest.raises(urllib.error.HTTPError) as missing:
        _get(server.url + "nothing-here")
    assert missing.value.code == 404


def test_server_refuses_other_host_names(server: PreviewServer) -> None:
    request = urllib.request.Request(server.url, headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403


def test_events_announce_a_rebuild_after_an_edit(server: PreviewServer, workspace: Path) -> None:
    first = server.session.build_id
    with urllib.request.urlopen(server.url + "events", timeout=WAIT_SECONDS) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        assert stream.readline() == b"retry: 1000\n"
        assert stream.readline() == b"\n"
        assert stream.readline() == b"event: build\n"
        assert stream.readline() == f"data: {first}\n".encode()
        _replace(_issue(workspace), 'subject: "Albania raid', 'subject: "Edited: Albania raid')
        lines = [stream.readline() for _ in range(4)]
    assert lines[0] == b"\n" and lines[1] == b"event: build\n", lines
    assert lines[2].startswith(b"data: ") and lines[2] != f"data: {first}\n".encode()
    assert "Edited: Albania raid" in _get(server.url)[1]
    email = workspace / "build" / "sample" / "email.html"
    _wait_for(
        lambda: "<title>Edited: Albania raid" in email.read_text(encoding="utf-8"),
        "the preview writes the build too",
    )


def test_a_bad_issue_file_shows_on_the_page_and_the_server_recovers(
    server: PreviewServer, workspace: Path
) -> None:
    issue = _issue(workspace)
    good = issue.read_text(encoding="utf-8")
    issue.write_text(good.replace("sections:", "sections: [", 1), encoding="utf-8")
    _wait_for(lambda: not server.session.state()["ok"], "the failed build")
    page = _get(server.url)[1]
    assert 'id="build-error"' in page
    assert "issue.yaml:" in page and "YAML syntax error" in page
    assert "Below is the last build that worked." in page
    issue.write_text(good, encoding="utf-8")
    _wait_for(lambda: server.session.state()["ok"], "the repaired build")
    assert 'id="build-error"' not in _get(server.url)[1]


# --- ports ---------------------------------------------------------------------------------


def _listening_port() -> socket.socket:
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    return blocker


def test_a_port_in_use_moves_to_the_next_free_one() -> None:
    with _listening_port() as blocker:
        taken = blocker.getsockname()[1]
        server = bind(taken)
        try:
            assert server.server_address[1] > taken
        finally:
            server.server_close()


def test_no_free_port_in_range_is_one_clear_error() -> None:
    with _listening_port() as blocker:
        taken = blocker.getsockname()[1]
        with pytest.raises(UserError, match=rf"ports {taken}-{taken} on 127.0.0.1 are all in use"):
            bind(taken, attempts=1)


def test_cli_serves_on_the_next_port_and_stops_on_ctrl_c(workspace: Path) -> None:
    with _listening_port() as blocker:
        taken = blocker.getsockname()[1]
        command = [sys.executable, "-c", "from newsletter.cli import main; main()"]
        process = subprocess.Popen(
            [*command, "--workspace", str(workspace), "preview", "sample", "--port", str(taken)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(2)]
            found = re.search(r"previewing sample at (http://127\.0\.0\.1:(\d+)/)", lines[1])
            assert found, lines
            assert int(found.group(2)) != taken
            assert json.loads(_get(found.group(1) + "state.json")[1])["ok"] is True
        finally:
            process.send_signal(signal.SIGINT)
            stdout, stderr = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 0, stderr
    assert lines[0].startswith("build #1 in ")
    assert f"warning: port {taken} is in use; using {found.group(2)}" in stderr
    assert lines[1] == (
        f"previewing sample at {found.group(1)} — rebuilds when issues/sample/ or templates/ or"
        " newsletter.toml change; Ctrl-C stops\n"
    )
    assert stdout.strip() == "preview stopped"


# --- the command's own errors ---------------------------------------------------------------


def test_unknown_issue_fails_before_serving(workspace: Path) -> None:
    outcome = run(workspace, "preview", "nope", "--port", "0")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: ")
    assert "issues/nope/issue.yaml: file not found — start it with `newsletter new nope`" in (
        outcome.stderr
    )


def test_missing_chromium_is_one_line_and_exit_1(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NEWSLETTER_CHROMIUM", str(tmp_path / "no-such-chromium"))
    outcome = run(workspace, "preview", "sample", "--screenshot", str(tmp_path / "shots"))
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: NEWSLETTER_CHROMIUM: Chromium not found at {tmp_path / 'no-such-chromium'}"
        " — install it with `apt-get install chromium`, or point NEWSLETTER_CHROMIUM at a"
        " Chromium executable\n"
    )
    assert not (tmp_path / "shots").exists()


def test_chromium_nowhere_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(UserError) as missing:
        find_chromium({"PATH": str(tmp_path)}, default=tmp_path / "chromium")
    assert missing.value.line() == (
        f"Chromium is needed for screenshots and was not found at {tmp_path / 'chromium'} or on"
        " PATH — install it with `apt-get install chromium`, or set"
        " NEWSLETTER_CHROMIUM=/path/to/chromium"
    )


def test_open_and_screenshot_do_not_combine(workspace: Path, tmp_path: Path) -> None:
    outcome = run(workspace, "preview", "sample", "--open", "--screenshot", str(tmp_path))
    assert outcome.exit_code == 2
    assert "--open needs the server" in outcome.stderr
