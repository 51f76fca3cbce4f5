"""What MJML cannot say, added to its HTML: the email-client <meta> tags and the preheader.

mjml-python drops <mj-raw> in <mj-head>, and its <mj-preview> block has a white-on-grey
colour (a spam-filter signal), no Outlook hiding and no filler after the text.
"""

from __future__ import annotations

import re

HEAD_METAS = (
    '<meta name="x-apple-disable-message-reformatting">\n'
    '<meta name="format-detection" content="telephone=no, date=no, address=no, email=no, url=no">\n'
    '<meta name="color-scheme" content="light dark">\n'
    '<meta name="supported-color-schemes" content="light dark">\n'
)
PREHEADER_STYLE = (
    "display:none;font-size:1px;line-height:1px;max-height:0px;max-width:0px;"
    "opacity:0;overflow:hidden;mso-hide:all;"
)
# Zero-width non-joiner + no-break space, repeated: inboxes show these blanks after the
# preheader instead of pulling the first lines of the body into the preview line.
PREHEADER_FILLER = "&zwnj;&nbsp;" * 60
_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>\n?')
_MJML_PREVIEW = re.compile(
    r'(<body[^>]*>\s*)<div style="display:none;[^"]*">(.*?)</div>', re.DOTALL
)


def finish_html(html: str) -> str:
    """`html` from MJML and premailer with the client metas and the preheader made safe."""
    html = _VIEWPORT.sub(lambda match: match.group(0).rstrip("\n") + "\n" + HEAD_METAS, html, 1)
    return _MJML_PREVIEW.sub(_preheader, html, 1)


def _preheader(match: re.Match[str]) -> str:
    body, text = match.group(1), match.group(2)
    return f'{body}<div style="{PREHEADER_STYLE}">{text}{PREHEADER_FILLER}</div>'


def preheader_text(text: str) -> str:
    """The words of a preheader, without its filler (as lxml reads it: characters)."""
    return " ".join(text.replace("\u200c", "").replace("\xa0", " ").split())
