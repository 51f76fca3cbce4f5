"""Whatever content holds, it never becomes a merge or template tag, an escape or a bad link."""

from __future__ import annotations

import email
from email.message import Message
from pathlib import Path

import pytest

from tests._cli import run

ISSUE = Path("issues") / "sample" / "issue.yaml"
FIRST_TITLE = '      - title: "Iranians hold rallies'
FIRST_URL = "        url: https://example.org/placeholder/iranians-hold-rallies"


def _edit_issue(workspace: Path, old: str, new: str) -> None:
    path = workspace / ISSUE
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.mark.parametrize(
    "title", ["{{{{x}}}}", "{{{x}}}", "%%%email%%%", "{%% raw %%}", "{#{# c #}#}", "%%%%%%"]
)
def test_stacked_markers_in_a_title_build_and_stay_inert(workspace: Path, title: str) -> None:
    _edit_issue(workspace, FIRST_TITLE, f'      - title: "{title} Iranians hold rallies')

    result = run(workspace, "build", "sample")

    assert result.exit_code == 0, result.stderr
    for name in ("email.html", "email.txt"):
        built = (workspace / "build" / "sample" / name).read_text(encoding="utf-8")
        for marker in ("{{", "{%", "{#", "%%email%%", "%%%"):
            assert marker not in built.replace("%%unsubscribe_url%%", "").replace(
                "%%first_name%%", ""
            ), (name, marker)


def _sent_message(workspace: Path) -> Message:
    (eml,) = (workspace / "outbox" / "sample").glob("*.eml")
    return email.message_from_bytes(eml.read_bytes())


def _parts(message: Message) -> str:
    texts = []
    for part in message.walk():
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            texts.append(payload.decode(part.get_content_charset() or "utf-8"))
    return "\n".join(texts)


@pytest.mark.parametrize("first_name", ["%%%email%%%", "%%email%%", "%%unsubscribe_url%%"])
def test_a_first_name_that_looks_like_a_merge_tag_is_not_filled(
    workspace: Path, first_name: str
) -> None:
    added = run(workspace, "subscribers", "add", "kim@example.com", "--first-name", first_name)
    assert added.exit_code == 0, added.stderr

    sent = run(workspace, "send", "sample", "--backend", "outbox", "--yes")

    assert sent.exit_code == 0, sent.stderr
    body = _parts(_sent_message(workspace))
    greeting = next(line for line in body.splitlines() if line.startswith("Hi "))
    assert "kim@example.com" not in greeting
    assert "%%" not in greeting and "http" not in greeting


def test_non_ascii_attributes_come_out_as_characters_not_rust_escapes(workspace: Path) -> None:
    alt = "cafe\u0301 au\u00a0lait \u263a\ufe0f"
    _edit_issue(
        workspace,
        FIRST_URL,
        f'        image: {{src: "https://example.org/caf\u00e9.jpg", alt: "{alt}"}}\n{FIRST_URL}',
    )

    result = run(workspace, "build", "sample")

    assert result.exit_code == 0, result.stderr
    html = (workspace / "build" / "sample" / "email.html").read_text(encoding="utf-8")
    assert "\\u{" not in html
    assert 'alt="caf\u00e9 au\u00a0lait \u263a\ufe0f"' in html
    assert "https://example.org/caf%C3%A9.jpg" in html


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('https://example.org/a\\"b<c>d', "https://example.org/a%22b%3Cc%3Ed"),
        ("https://example.org/q?x=<script>", "https://example.org/q?x=%3Cscript%3E"),
        ("https://example.org/50%off`{x}|", "https://example.org/50%25off%60%7Bx%7D%7C"),
    ],
)
def test_unsafe_characters_in_article_urls_are_percent_encoded(
    workspace: Path, written: str, expected: str
) -> None:
    _edit_issue(workspace, FIRST_URL, f'        url: "{written}"\n#')

    result = run(workspace, "build", "sample")

    assert result.exit_code == 0, result.stderr
    html = (workspace / "build" / "sample" / "email.html").read_text(encoding="utf-8")
    text = (workspace / "build" / "sample" / "email.txt").read_text(encoding="utf-8")
    joiner = "&amp;" if "?" in expected else "?"
    assert f'href="{expected}{joiner}utm_source' in html
    assert f"{expected}{joiner.replace('&amp;', '&')}utm_source" in text


def test_a_host_with_markup_characters_is_refused_with_its_field(workspace: Path) -> None:
    _edit_issue(workspace, FIRST_URL, '        url: "https://example.org\\"><x>/"\n#')

    result = run(workspace, "check", "sample")

    assert result.exit_code == 1
    assert "sections[0].articles[0].url" in result.stderr
    assert "host name" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_check_flags_an_escape_that_mjml_wrote(workspace: Path) -> None:
    from newsletter.build.checks import BuiltEmail, run_checks
    from newsletter.build.output import make_build
    from newsletter.config import load_settings

    build = make_build(load_settings(workspace), "sample")
    html = build.rendered.email_html.replace("<body", '<body title="a\\u{a0}b"', 1)
    built = BuiltEmail(html, build.rendered.text, build.issue, (), build.rendered.mjml)

    codes = [finding.code for finding in run_checks(built) if finding.level == "error"]

    assert codes == ["escape"]


@pytest.mark.parametrize("subject", ["\u2600\ufe0f Sunny", "No\u00a0break", "Zero\u200bwidth"])
def test_a_subject_with_emoji_or_invisible_characters_builds_and_checks(
    workspace: Path, subject: str
) -> None:
    _edit_issue(
        workspace,
        'subject: "Albania raid',
        f'subject: "{subject} Albania raid',
    )

    result = run(workspace, "check", "sample")

    assert result.exit_code == 0, result.stderr
    built = run(workspace, "build", "sample")
    assert built.exit_code == 0
    html = (workspace / "build" / "sample" / "email.html").read_text(encoding="utf-8")
    assert "\\u{" not in html
    assert "<title>" in html and "Albania raid" in html
