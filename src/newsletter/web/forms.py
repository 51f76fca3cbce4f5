"""Reading a posted form safely: bounded, decoded, and a clear 400 when it is not one."""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_FIELDS = 20


class BadForm(Exception):
    """The body is not a form we can read (malformed, binary, files, too many fields)."""


async def read_form(request: Request) -> dict[str, str]:
    """The posted fields (first value of each); an empty body is an empty form."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        raise BadForm(f"a form is posted as application/x-www-form-urlencoded, not {content_type}")
    if not content_type:
        return {} if not await request.body() else _refuse("a form needs a Content-Type")
    if content_type == "application/x-www-form-urlencoded":
        return _urlencoded(await request.body())
    try:
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    except Exception as exc:  # python-multipart and Starlette raise several kinds
        raise BadForm(f"the form could not be read ({type(exc).__name__})") from None
    fields: dict[str, str] = {}
    for name, value in form.multi_items():
        if not isinstance(value, str):
            raise BadForm("files are not accepted")
        if "\ufffd" in value or "\x00" in value:
            raise BadForm("the form is not UTF-8 text")
        fields.setdefault(name, value)
    return fields


def _urlencoded(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise BadForm("the form is not UTF-8 text, or has too many fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in value:
            raise BadForm("the form holds a NUL character")
        fields.setdefault(name, value)
    return fields


def _refuse(reason: str) -> dict[str, str]:
    raise BadForm(reason)
