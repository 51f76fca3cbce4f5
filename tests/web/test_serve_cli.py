"""`newsletter serve` as a user runs it: a real process, its log, its errors."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests._cli import run
from tests._workspace import add_subscribers, sample_workspace

NEWSLETTER = Path(sys.executable).parent / "newsletter"


def _start(root: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [str(NEWSLETTER), "-w", str(root), "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"on (http://127\.0\.0\.1:\d+)/", line)
    assert found, (line, process.stderr.read() if process.poll() is not None else "")
    return process, found.group(1)


def test_serve_runs_on_the_sample_workspace_without_credentials(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    add_subscribers(root, ["ann@example.org"])
    assert run(root, "send", "sample", "--backend", "outbox", "--yes").exit_code == 0
    eml = (root / "outbox" / "sample" / "ann@example.org.eml").read_text()
    token = re.search(r"unsubscribe\?t=([A-Za-z0-9_-]+)", eml)
    assert token is not None
    process, base = _start(root)
    try:
        assert httpx.get(f"{base}/healthz").json() == {"ok": True, "database": "ok"}
        assert httpx.get(f"{base}/unsubscribe?t={token.group(1)}").status_code == 200
        assert httpx.get(f"{base}/subscribe").status_code == 200
        assert httpx.get(f"{base}/archive/").status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    assert process.returncode == 0
    assert "NEWSLETTER_UNSUBSCRIBE_SECRET is not set" in stderr
    assert "GET /unsubscribe 200" in stderr
    assert token.group(1) not in stderr  # tokens never reach the log
    assert "Traceback" not in stderr


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        port = str(taken.getsockname()[1])
        outcome = subprocess.run(
            [str(NEWSLETTER), "-w", str(root), "serve", "--port", port],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        taken.close()
    assert outcome.returncode == 1
    lines = [line for line in outcome.stderr.splitlines() if not line.startswith("warning:")]
    assert lines == [
        f"error: --port: cannot listen on 127.0.0.1:{port} (Address already in use) — pick "
        "another port with --port, or stop what is using it"
    ]


def test_a_bad_host_is_one_line(tmp_path: Path) -> None:
    root = sample_workspace(tmp_path / "ws")
    started = time.monotonic()
    outcome = run(root, "serve", "--host", "no such host!", "--port", "0")
    assert outcome.exit_code == 1
    assert outcome.stderr.splitlines()[-1].startswith("error: --host: cannot listen on")
    assert time.monotonic() - started < 30
