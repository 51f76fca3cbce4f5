"""Content from articles cannot inject script, handlers or styles into the email."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import html as lxml_html

from newsletter.build.output import make_build
from newsletter.config import load_settings

ATTACKS = [
    "<script>alert(1)</script>Teaser",
    '<img src=x onerror="alert(1)">Teaser',
    '<a href="javascript:alert(1)">click</a>',
    '<p style="background:url(https://evil.example/px.gif)">styled</p>',
    "<style>body{display:none}</style>hidden",
    '<iframe src="https://evil.example/"></iframe>',
    '"><svg onload=alert(1)>',
    "</mj-text><mj-raw><script>alert(1)</script></mj-raw><mj-text>",
    "{{ merge.unsubscribe_url }}{% raw %}",
]


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("field", ["teaser", "title", "intro"])
def test_attack_is_neutralised(workspace: Path, attack: str, field: str) -> None:
    issue = workspace / "issues" / "sample" / "issue.yaml"
    text = issue.read_text()
    escaped = attack.replace("\\", "\\\\").replace('"', '\\"')
    if field == "intro":
        text = text.replace('intro: "Good morning.', f'intro: "{escaped} Good morning.', 1)
    else:
        marker = f'        {field}: "' if field == "teaser" else '      - title: "'
        text = text.replace(marker, f"{marker}{escaped} ", 1)
    issue.write_text(text)

    build = make_build(load_settings(workspace), "sample")

    html = build.rendered.email_html
    doc = lxml_html.document_fromstring(html.encode())
    assert not doc.xpath("//script | //iframe | //svg | //img")
    for element in doc.iter():
        if isinstance(element.tag, str):
            assert not any(name.startswith("on") for name in element.attrib)
            assert not any("javascript:" in value for value in element.attrib.values())
    # Escaped text is harmless; what matters is that no element or attribute carries it.
    for element in doc.iter():
        if isinstance(element.tag, str):
            assert not any("evil.example" in value for value in element.attrib.values())
    assert "body{display:none}" not in "".join(s.text_content() for s in doc.iter("style"))
    assert "{{" not in html and "%%unsubscribe_url%%</" not in html
    assert build.ok, [f for f in build.findings if f.level == "error"]
    assert "<script" not in build.rendered.text
