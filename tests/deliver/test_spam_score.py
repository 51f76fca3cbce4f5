"""A real outbox .eml of the sample, as SpamAssassin (`spamassassin -L -t`) and relays see it."""

from __future__ import annotations

import re
import shutil
import subprocess
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import pytest

from tests._cli import run
from tests._workspace import REPO, sample_workspace

GOAL = 0.5
# Rules about what a real ESP adds on the way: Received headers, relays, DKIM, SPF.
ESP_RULES = re.compile(r"^(NO_RECEIVED|NO_RELAYS|RDNS_NONE|.*DKIM.*|.*SPF.*)$")
_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z][A-Z0-9_]+)\s", re.MULTILINE)


@pytest.fixture(scope="module")
def eml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = sample_workspace(tmp_path_factory.mktemp("spam") / "ws")
    shutil.copy(REPO / "examples" / "subscribers.csv", root / "subscribers.csv")
    assert run(root, "subscribers", "import", str(root / "subscribers.csv")).exit_code == 0
    sent = run(root, "send", "sample", "--backend", "outbox", "--yes")
    assert sent.exit_code == 0, sent.stderr
    return root / "outbox" / "sample" / "ann@example.org.eml"


def spam_rules(path: Path) -> dict[str, float]:
    """The rules SpamAssassin's local tests hit on `path`, with their points."""
    executable = shutil.which("spamassassin")
    if executable is None:
        pytest.fail("spamassassin is not installed: `apt-get install spamassassin` (.ci/run does)")
    report = subprocess.run(
        [executable, "-L", "-t"],
        input=path.read_bytes(),
        capture_output=True,
        check=True,
        timeout=300,
    ).stdout.decode("utf-8", "replace")
    details = report.partition("Content analysis details:")[2]
    assert details, report[-2000:]
    return {name: float(points) for points, name in _RULE_LINE.findall(details)}


def test_the_sample_scores_at_most_the_goal_without_esp_rules(eml: Path) -> None:
    rules = spam_rules(eml)
    assert "HTML_MESSAGE" in rules, rules  # the report was read: the HTML part was seen
    # Long QP lines, the preheader's white on grey, the address in the unsubscribe link.
    for name in (
        "MIME_QP_LONG_LINE",
        "HTML_FONT_LOW_CONTRAST",
        "LONGLN_LOW_CONTRAST",
        "GB_CUSTOM_HTM_URI",
    ):
        assert name not in rules, rules
    counted = {n: p for n, p in rules.items() if not ESP_RULES.match(n)}
    assert sum(counted.values()) <= GOAL, counted


def test_bodies_are_quoted_printable_in_76_character_lines(eml: Path) -> None:
    data = eml.read_bytes()
    message = cast(EmailMessage, message_from_bytes(data, policy=policy.default))
    parts = list(message.iter_parts())
    assert [part["Content-Transfer-Encoding"] for part in parts] == ["quoted-printable"] * 2
    head, _, body = data.partition(b"\r\n\r\n")
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    # Headers keep 998: a long List-Unsubscribe URL is not folded into encoded words.
    unfolded = [line for line in head.split(b"\r\n") if line.startswith(b"List-Unsubscribe:")]
    assert len(unfolded) == 1 and unfolded[0].endswith(b">")
    html = cast(EmailMessage, message.get_body(("html",))).get_content()
    assert "Hi Ann," in html and "&zwnj;&nbsp;" in html
