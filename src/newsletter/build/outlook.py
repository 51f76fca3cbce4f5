"""The email as Outlook's Word engine reads it, and the widths it lays out.

Outlook desktop opens the `<!--[if mso | IE]>` blocks (MJML's fixed-width tables) and
skips the `<!--[if !mso]><!-->` ones; its columns are those tables' cells, and an image
is as wide as its `width` attribute. Too wide, and Outlook widens the whole email.
"""

from __future__ import annotations

import re

from lxml import html as lxml_html

EMAIL_WIDTH_PX = 600
_NOT_MSO = re.compile(r"<!--\[if !mso[^\]]*\]><!-->.*?<!--<!\[endif\]-->", re.DOTALL)
_MSO_OPEN = re.compile(r"<!--\[if [^\]]*mso[^\]]*\]>")
_MSO_CLOSE = re.compile(r"<!\[endif\]-->")
_WIDTH = re.compile(r"(?:^|;)\s*width\s*:\s*(\d+(?:\.\d+)?)px", re.IGNORECASE)
_COLUMN_CELL = re.compile(r"^\s*vertical-align\s*:\s*top\s*;\s*width\s*:", re.IGNORECASE)


FIX = "write every padding with units (0px, not 0) and size images to their column"


def _too_wide(what: str, width: float, limit: float) -> str:
    return f"in Outlook, {what} is {width:g}px wide in {limit:g}px — {FIX}"


def outlook_view(html: str) -> str:
    """The HTML Outlook renders: mso blocks opened, not-mso blocks dropped."""
    return _MSO_CLOSE.sub("", _MSO_OPEN.sub("", _NOT_MSO.sub("", html)))


def width_problems(html: str) -> list[str]:
    document = lxml_html.document_fromstring(outlook_view(html).encode("utf-8"))
    problems: list[str] = []
    for row in document.iter("tr"):
        columns = [cell for cell in row.iterchildren("td") if _is_column(cell)]
        if not columns:
            continue
        total = sum(_style_width(cell) or 0.0 for cell in columns)
        total += _horizontal_padding(_padded_ancestor(row))
        if total > EMAIL_WIDTH_PX:
            problems.append(_too_wide(f"a row of {len(columns)} column(s)", total, EMAIL_WIDTH_PX))
    for image in document.iter("img"):
        width = _number(image.get("width") or "")
        column, padding = _column_of(image)
        src = image.get("src") or "an image"
        if width is None:
            problems.append(f"in Outlook, image {src} has no width in pixels — {FIX}")
            continue
        if column is not None and width + padding > column:
            problems.append(_too_wide(f"image {src} with its paddings", width + padding, column))
    return problems


def _is_column(cell: lxml_html.HtmlElement) -> bool:
    return bool(_COLUMN_CELL.match(cell.get("style") or ""))


def _style_width(element: lxml_html.HtmlElement) -> float | None:
    match = _WIDTH.search(element.get("style") or "")
    return float(match.group(1)) if match else None


def _number(value: str) -> float | None:
    value = value.strip().removesuffix("px")
    return float(value) if re.fullmatch(r"\d+(?:\.\d+)?", value) else None


def _padded_ancestor(row: lxml_html.HtmlElement) -> lxml_html.HtmlElement | None:
    """The section cell holding a row of columns: the nearest enclosing <td> with padding."""
    for ancestor in row.iterancestors("td"):
        if "padding" in (ancestor.get("style") or ""):
            return ancestor
    return None


def _column_of(image: lxml_html.HtmlElement) -> tuple[float | None, float]:
    """The width of the column holding `image` and the paddings of the cells in between."""
    padding = 0.0
    for ancestor in image.iterancestors("td"):
        if _is_column(ancestor):
            return _style_width(ancestor), padding
        padding += _horizontal_padding(ancestor)
    return None, padding


def _horizontal_padding(cell: lxml_html.HtmlElement | None) -> float:
    if cell is None:
        return 0.0
    declarations = dict(
        (name.strip().lower(), value.strip())
        for name, _, value in (part.partition(":") for part in (cell.get("style") or "").split(";"))
        if value
    )
    left = right = 0.0
    if "padding" in declarations:
        sides = [_length(value) for value in declarations["padding"].split()]
        if sides:
            top_right = sides[1] if len(sides) > 1 else sides[0]
            right = top_right
            left = sides[3] if len(sides) > 3 else top_right
    left = _length(declarations.get("padding-left", "")) if "padding-left" in declarations else left
    if "padding-right" in declarations:
        right = _length(declarations["padding-right"])
    return left + right


def _length(value: str) -> float:
    return _number(value.strip()) or 0.0
