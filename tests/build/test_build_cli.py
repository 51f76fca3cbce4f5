"""`newsletter build/check/new/init` through the CLI: good input and every kind of bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests._cli import run


def _issue(workspace: Path) -> Path:
    return workspace / "issues" / "sample" / "issue.yaml"


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _snapshot(directory: Path) -> dict[str, bytes]:
    if not directory.exists():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_build_writes_the_four_outputs(workspace: Path) -> None:
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 0, outcome.stderr
    out = workspace / "build" / "sample"
    assert sorted(p.name for p in out.iterdir()) == [
        "email.html",
        "email.txt",
        "preview.html",
        "report.json",
        "web.html",
    ]
    assert out.stat().st_mode & 0o777 == 0o755
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] is True
    assert report["files"]["email.html"]["bytes"] == (out / "email.html").stat().st_size
    assert outcome.stdout.startswith("built build/sample/: email.html ")
    # The sample's links are example.org placeholders: said once, as a warning.
    assert outcome.stderr.count("warning: [placeholder] 11 article link(s)") == 1
    assert not list((workspace / "build").glob(".*")), "no staging directories left behind"


def test_build_is_deterministic(workspace: Path) -> None:
    assert run(workspace, "build", "sample").exit_code == 0
    first = _snapshot(workspace / "build" / "sample")
    assert run(workspace, "build", "sample").exit_code == 0
    assert _snapshot(workspace / "build" / "sample") == first


def test_check_writes_nothing(workspace: Path) -> None:
    outcome = run(workspace, "check", "sample")
    assert outcome.exit_code == 0
    assert "sample: all checks passed (with warnings)" in outcome.stdout
    assert not (workspace / "build").exists()


BAD_INPUTS = [
    pytest.param(
        "  - title: Latest",
        "  - title: [Latest",
        "issue.yaml:15: YAML syntax error",
        id="malformed-yaml",
    ),
    pytest.param(
        'subject: "Albania raid on Ashraf 3 sparks protests across Europe"',
        'subject: "Albania raid on Ashraf 3 sparks protests across Europe',
        "issue.yaml:3: a quoted value is not closed on its line — add the closing quote",
        id="unclosed-quote-then-quoted-line",
    ),
    pytest.param(
        'sanctions announced"\n        url: https://example.org/placeholder/after',
        "sanctions announced\n        url: https://example.org/placeholder/after",
        "issue.yaml:17: a quoted value is not closed on its line",
        id="unclosed-quote-in-an-article",
    ),
    pytest.param(
        "date: 2026-12-01",
        "date: '2026-12-01",
        "issue.yaml:5: a quoted value is not closed on its line",
        id="unclosed-single-quote",
    ),
    pytest.param(
        "    layout: lead\n",
        "    layout: lead\n    articles: []\n",
        "issue.yaml:11: 'articles' is written twice in the same place — keep one of them",
        id="duplicate-key",
    ),
    pytest.param(
        'preheader: "Rallies',
        'preheader: "\x0cRallies',
        "issue.yaml:4: the file holds a control character ('\\x0c') YAML does not allow",
        id="raw-form-feed",
    ),
    pytest.param(
        "intro: ",
        "intro: \x1c",
        "issue.yaml:6: the file holds a control character ('\\x1c') YAML does not allow",
        id="raw-file-separator",
    ),
    pytest.param(
        'preheader: "Rallies',
        'preheader: 5\nx: "Rallies',
        "issue.yaml:4: preheader: must be text (it is 5) — correct the value",
        id="number-for-text",
    ),
    pytest.param(
        '        teaser: "Protests',
        "        image: {src: https://example.org/a.jpg, alt: Rally, width: 0}\n"
        '        teaser: "Protests',
        "sections[0].articles[0].image.width: must be at least 1 (it is 0)",
        id="number-out-of-range",
    ),
    pytest.param(
        'subject: "Albania raid on Ashraf 3 sparks protests across Europe"\n',
        "",
        "issue.yaml:3: subject: is required — add the subject field",
        id="missing-field",
    ),
    pytest.param(
        "layout: grid",
        "layout: carousel",
        "issue.yaml:27: sections[2].layout: unknown layout 'carousel'; use one of: lead, list, grid"
        " — set layout to one of: lead, list, grid",
        id="unknown-layout",
    ),
    pytest.param(
        '        teaser: "Ahead of COP30',
        '        image: {src: https://example.org/a.jpg}\n        teaser: "Ahead of COP30',
        "issue.yaml:22: sections[1].articles[1].image.alt: is required"
        " — describe the image in a few words for readers who do not see it",
        id="image-without-alt",
    ),
    pytest.param(
        "url: https://example.org/placeholder/washington",
        "url: example.org/placeholder/washington",
        "issue.yaml:36: sections[2].articles[2].url: 'example.org/placeholder/washington-sanctions"
        "-sudanese-islamist-actors' is not an absolute http(s) URL — use a full address starting"
        " with https://",
        id="relative-url",
    ),
    pytest.param(
        "date: 2026-12-01",
        "date: first of December",
        "issue.yaml:5: date: is not a real date",
        id="bad-date",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD_INPUTS)
def test_bad_issue_file_is_one_line_and_keeps_the_previous_build(
    workspace: Path, old: str, new: str, expected: str
) -> None:
    assert run(workspace, "build", "sample").exit_code == 0
    before = _snapshot(workspace / "build" / "sample")
    _replace(_issue(workspace), old, new)

    outcome = run(workspace, "build", "sample")

    assert outcome.exit_code == 1
    assert outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, outcome.stderr
    assert lines[0].startswith("error: ")
    assert expected in lines[0]
    assert "Traceback" not in outcome.stderr
    assert _snapshot(workspace / "build" / "sample") == before


def _template(workspace: Path, name: str, text: str) -> None:
    path = workspace / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        pytest.param(
            "partials/footer.mjml.j2",
            "<mj-section><mj-column><mj-text>{% if %}</mj-text></mj-column></mj-section>",
            "error: templates/partials/footer.mjml.j2:1: template syntax error: "
            "Expected an expression, got 'end of statement block' — correct the Jinja2 tag at"
            " that line",
            id="syntax-error",
        ),
        pytest.param(
            "partials/footer.mjml.j2",
            "<mj-section><mj-column><mj-text>{{ newsletter.nmae }}</mj-text></mj-column>"
            "</mj-section>",
            "error: templates/footer.mjml.j2:1: template uses an undefined value",
            id="undefined-value",
        ),
        pytest.param(
            "partials/footer.mjml.j2",
            "<mj-section><mj-column><mj-foo>x</mj-foo></mj-column></mj-section>",
            "error: templates/newsletter.mjml.j2 (or a partial): unknown MJML tag <mj-foo>",
            id="unknown-mjml-tag",
        ),
        pytest.param(
            "newsletter.mjml.j2",
            '<mjml><mj-body>{% include "partials/missing.mjml.j2" %}</mj-body></mjml>',
            "error: templates/partials/missing.mjml.j2: template 'partials/missing.mjml.j2' not"
            " found",
            id="missing-template",
        ),
    ],
)
def test_template_errors_are_one_line(workspace: Path, name: str, text: str, expected: str) -> None:
    _template(workspace, name, text)
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 1
    assert len(outcome.stderr.splitlines()) == 1, outcome.stderr
    assert outcome.stderr.startswith(expected)
    assert not (workspace / "build" / "sample").exists()


def test_workspace_template_overrides_the_builtin(workspace: Path) -> None:
    _template(
        workspace,
        "partials/footer.mjml.j2",
        '<mj-section><mj-column><mj-text><p>Our own footer <a href="{{ merge.unsubscribe_url }}">'
        "Unsubscribe</a> {{ sender.postal_address }}</p></mj-text></mj-column></mj-section>",
    )
    assert run(workspace, "build", "sample").exit_code == 0
    assert "Our own footer" in (workspace / "build/sample/email.html").read_text()


def test_failed_checks_exit_1_and_say_why(workspace: Path) -> None:
    _replace(_issue(workspace), 'preheader: "Rallies in ten cities', 'preheader: "Too short" #')
    outcome = run(workspace, "check", "sample")
    assert outcome.exit_code == 1
    assert "error: [preheader] the preheader is 9 characters; inboxes show 35-140" in outcome.stderr


def test_unknown_issue(workspace: Path) -> None:
    outcome = run(workspace, "build", "nope")
    assert outcome.exit_code == 1
    assert (
        "issues/nope/issue.yaml: file not found — start the issue with `newsletter new SLUG`"
        in (outcome.stderr)
    )


def test_bad_slug(workspace: Path) -> None:
    outcome = run(workspace, "build", "../etc")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: issue name '../etc' is not a valid slug")


def test_no_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = run(None, "build", "sample")
    assert outcome.exit_code == 1
    assert "no newsletter.toml found" in outcome.stderr
    assert "newsletter init DIR" in outcome.stderr


def test_bad_setting_names_file_and_field(workspace: Path) -> None:
    config = workspace / "newsletter.toml"
    config.write_text(
        config.read_text().replace('primary_color = "#0b4f8a"', 'primary_color = "blue"')
    )
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 1
    assert "newsletter.toml: [brand.primary_color] 'blue' is not a colour" in outcome.stderr


def test_init_then_new_then_build(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    assert run(None, "init", str(root)).exit_code == 0
    # No copies of the built-in templates: only a README on how to override one.
    assert [p.name for p in (root / "templates").iterdir()] == ["README.md"]
    assert (root / ".env.example").read_text().count("SENDGRID_API_KEY=") == 1
    outcome = run(root, "new", "first", "--subject", 'Hello "world"')
    assert outcome.exit_code == 0
    text = (root / "issues/first/issue.yaml").read_text()
    assert 'subject: "Hello \\"world\\""' in text
    # An empty skeleton is not buildable yet, and says which field to fill in first.
    outcome = run(root, "build", "first")
    assert outcome.exit_code == 1
    assert "preheader: must not be empty" in outcome.stderr
    assert run(root, "new", "first").exit_code == 1
    assert run(None, "init", str(root)).exit_code == 1


def test_repository_env_example_is_the_one_init_writes() -> None:
    from newsletter.workspace import ENV_EXAMPLE

    repo = Path(__file__).resolve().parents[2]
    assert (repo / ".env.example").read_text(encoding="utf-8") == ENV_EXAMPLE


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        pytest.param(
            "newsletter.toml",
            b'name = "caf\xe9"\n',
            "newsletter.toml: not UTF-8 text (byte 11) — save the file as UTF-8",
            id="toml-latin1",
        ),
        pytest.param(
            ".env",
            b"SENDGRID_API_KEY=caf\xe9\n",
            ".env: not UTF-8 text (byte 20) — save the file as UTF-8",
            id="dotenv-latin1",
        ),
        pytest.param(
            "templates/newsletter.mjml.j2",
            b"<mjml>caf\xe9</mjml>",
            "error: templates/newsletter.mjml.j2 (or a template it includes): a template is not"
            " UTF-8 text (byte 9) — save the template as UTF-8",
            id="template-latin1",
        ),
    ],
)
def test_files_that_are_not_utf8(workspace: Path, name: str, content: bytes, expected: str) -> None:
    path = workspace / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 1
    assert len(outcome.stderr.splitlines()) == 1
    assert expected in outcome.stderr


def test_unknown_placeholder_in_a_setting(workspace: Path) -> None:
    config = workspace / "newsletter.toml"
    config.write_text(config.read_text().replace('"{slug}"', '"{issue}"'))
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 1
    assert (
        "newsletter.toml: [links.utm_campaign] unknown placeholder {issue}; the only one is {slug}"
        in outcome.stderr
    )


def test_workspace_option_names_a_file(workspace: Path) -> None:
    outcome = run(workspace / "newsletter.toml", "build", "sample")
    assert outcome.exit_code == 1
    assert outcome.stderr.startswith("error: --workspace: ")
    assert "is not a directory — give the workspace's directory" in outcome.stderr


def test_unwritable_build_folder(workspace: Path) -> None:
    (workspace / "build").write_text("a file where the build folder should be")
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {workspace / 'build'}: cannot write the build (File exists) — check that the"
        " workspace is writable by this user\n"
    )


def test_init_keeps_files_already_there(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "newsletter.mjml.j2").write_text("my own layout")
    (root / ".env.example").write_text("mine")
    outcome = run(None, "init", str(root))
    assert outcome.exit_code == 0
    assert (root / "templates" / "newsletter.mjml.j2").read_text() == "my own layout"
    assert (root / ".env.example").read_text() == "mine"
    assert "created " + str(root / "templates") not in outcome.stdout
    assert not (root / "templates" / "partials").exists()
    assert not (root / "templates" / "README.md").exists()


def test_an_issue_file_that_is_a_folder(workspace: Path) -> None:
    issue = _issue(workspace)
    issue.unlink()
    issue.mkdir()
    outcome = run(workspace, "build", "sample")
    assert outcome.exit_code == 1
    assert outcome.stderr == (
        f"error: {issue}: is a folder, not a file — start the issue with `newsletter new SLUG`\n"
    )


def test_new_takes_the_date_from_a_dated_slug(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert run(None, "init", str(root)).exit_code == 0
    for slug, expected in (("2026-12-08", "2026-12-08"), ("2031-01-05-extra", "2031-01-05")):
        assert run(root, "new", slug, "--subject", "Weekly").exit_code == 0
        text = (root / "issues" / slug / "issue.yaml").read_text(encoding="utf-8")
        assert f"date: {expected}" in text
    assert run(root, "new", "2026-02-30", "--subject", "Weekly").exit_code == 0  # not a date
    text = (root / "issues" / "2026-02-30" / "issue.yaml").read_text(encoding="utf-8")
    assert "date: 2026-02-30" not in text
