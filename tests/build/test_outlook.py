"""The Outlook width check on real mjml-python output: what Word's engine would widen."""

from __future__ import annotations

from pathlib import Path

from bench.twenty_stories import write_twenty_story_issue
from newsletter.build.outlook import outlook_view, width_problems
from newsletter.build.output import make_build
from newsletter.build.template_files import builtin_text
from newsletter.config import load_settings


def _override(workspace: Path, name: str, old: str, new: str) -> None:
    text = builtin_text(name)
    assert old in text, old
    target = workspace / "templates" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(old, new), encoding="utf-8")


def _outlook_errors(workspace: Path) -> list[str]:
    write_twenty_story_issue(workspace)
    build = make_build(load_settings(workspace), "twenty")
    return [f.message for f in build.findings if f.code == "outlook-width"]


def test_the_built_in_templates_fit(workspace: Path) -> None:
    assert _outlook_errors(workspace) == []


def test_a_unitless_zero_padding_widens_the_grid_rows(workspace: Path) -> None:
    _override(
        workspace,
        "partials/grid.mjml.j2",
        'padding="0px 12px" text',
        'padding="0 12px" text',
    )
    errors = _outlook_errors(workspace)
    assert errors == [
        "in Outlook, a row of 2 column(s) is 624px wide in 600px — write every padding with "
        "units (0px, not 0) and size images to their column (5 times)"
    ]


def test_an_image_wider_than_its_column_with_paddings(workspace: Path) -> None:
    # The thumbnail as the templates had it: no width, a unitless 0 first in its padding.
    _override(
        workspace,
        "partials/list.mjml.j2",
        '{{ story_image(article, "0px 0px 8px 24px", 180, thumbnail=True) }}',
        '<mj-image src="{{ article.image.src }}" alt="x" padding="0 0 8px 24px" />',
    )
    errors = _outlook_errors(workspace)
    assert len(errors) == 9
    assert errors[0] == (
        "in Outlook, image https://example.org/images/story-2.jpg with its paddings is 228px "
        "wide in 204px — write every padding with units (0px, not 0) and size images to "
        "their column"
    )


def test_outlook_view_opens_mso_blocks_and_drops_the_others() -> None:
    html = (
        "<p>a</p><!--[if mso | IE]><table><tr><td><![endif]--><div>b</div>"
        "<!--[if !mso]><!--><i>not in outlook</i><!--<![endif]-->"
        "<!--[if mso | IE]></td></tr></table><![endif]-->"
    )
    assert outlook_view(html) == "<p>a</p><table><tr><td><div>b</div></td></tr></table>"


def test_a_percentage_image_width_is_reported() -> None:
    html = (
        '<table><tr><td style="vertical-align:top;width:300px;"><table><tr><td>'
        '<img src="https://example.org/a.jpg" width="100%"></td></tr></table></td></tr></table>'
    )
    assert width_problems(html) == [
        "in Outlook, image https://example.org/a.jpg has no width in pixels — write every "
        "padding with units (0px, not 0) and size images to their column"
    ]
