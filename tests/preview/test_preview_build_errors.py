"""A build that fails before the first page (a fresh issue) shows its error on the live page."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from lxml import html as lxml_html

from tests._cli import run
from tests._workspace import make_workspace

WAIT_SECONDS = 15.0


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return str(response.read().decode("utf-8"))


@pytest.mark.parametrize("blank", [None, "preheader", "subject"])
def test_a_fresh_issue_previews_with_its_build_error_on_the_page(
    tmp_path: Path, blank: str | None
) -> None:
    workspace = make_workspace(tmp_path)
    assert run(workspace, "new", "x").exit_code == 0
    issue = workspace / "issues" / "x" / "issue.yaml"
    if blank:  # fill the rest so that only this field is empty
        text = issue.read_text(encoding="utf-8")
        for field in {"subject", "preheader"} - {blank}:
            text = re.sub(
                rf'^{field}: ""',
                f'{field}: "A {field} long enough to pass here"',
                text,
                count=1,
                flags=re.M,
            )
        issue.write_text(text, encoding="utf-8")
    command = [sys.executable, "-c", "from newsletter.cli import main; main()"]
    process = subprocess.Popen(
        [*command, "--workspace", str(workspace), "preview", "x", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        found = re.search(r"previewing x at (http://127\.0\.0\.1:\d+/)", line)
        assert found, (line, process.stderr.read() if process.poll() is not None else "")
        url = found.group(1)
        page = _get(url)
        document = lxml_html.document_fromstring(page)
        banner = document.get_element_by_id("build-error").text_content()
        field = blank or "subject"
        assert "issue.yaml:" in banner and f"{field}: must not be empty" in banner
        assert "There is no earlier build to show." in banner
        assert json.loads(_get(url + "state.json"))["ok"] is False
        assert process.poll() is None, "the server keeps running"
        assert _get(url)  # and still answers
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=WAIT_SECONDS)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "UndefinedError" not in stderr
    assert "build #1 failed (shown on the page):" in stderr
