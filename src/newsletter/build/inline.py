"""CSS inlining with premailer, configured so it cannot break what MJML produced.

Only the <style> block that starts with INLINE_MARKER is inlined; MJML's own blocks
(responsive @media rules with !important, Outlook fixes) are left exactly as they are.
"""

from __future__ import annotations

import importlib
import logging
import re
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

INLINE_MARKER = "/* newsletter:inline */"
_STYLE_OPEN = re.compile(r"<style(?P<attrs>[^>]*)>(?P<body>.*?)</style>", re.DOTALL)
_IGNORE_ATTR = re.compile(r' data-premailer="ignore"')
_DOCTYPE = re.compile(r"^\s*<!doctype[^>]*>", re.IGNORECASE)


def inline_css(html: str) -> str:
    # premailer imports requests (and urllib3, charset_normalizer...) to fetch external
    # styles; with allow_network=False it never does, so the import is skipped.
    with _unused_import("requests"):
        from premailer import Premailer  # heavy import (cssutils): only when building

    doctype = _DOCTYPE.match(html)
    marked = _STYLE_OPEN.sub(_mark_style, html)
    result = Premailer(
        marked,
        base_url=None,
        preserve_internal_links=True,
        preserve_inline_attachments=True,
        exclude_pseudoclasses=True,
        keep_style_tags=False,
        include_star_selectors=False,
        remove_classes=False,
        capitalize_float_margin=False,
        strip_important=False,
        external_styles=None,
        css_text=None,
        method="html",
        base_path=None,
        # An image's width attribute is what Outlook uses: never let CSS's 100% replace it.
        disable_basic_attributes=["width", "height"],
        disable_validation=True,
        cache_css_parsing=False,
        cssutils_logging_level=logging.CRITICAL,
        allow_network=False,
        allow_insecure_ssl=False,
        allow_loading_external_files=False,
        disable_link_rewrites=True,
        align_floating_images=False,
        remove_unset_properties=True,
    ).transform()
    result = _IGNORE_ATTR.sub("", str(result))
    if doctype and not _DOCTYPE.match(result):
        result = doctype.group(0).strip() + "\n" + result
    return result


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in for a module in the one import that binds it and may never use it."""

    def __getattr__(self, attribute: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attribute)


@contextmanager
def _unused_import(name: str) -> Iterator[None]:
    """Lets the code imported in this block bind `name` without importing it: the real
    module is imported on first use. Later imports of `name` get the real module."""
    if name in sys.modules:
        yield
        return
    standin = sys.modules[name] = _ImportedOnFirstUse(name)
    try:
        yield
    finally:
        if sys.modules.get(name) is standin:
            del sys.modules[name]


def _mark_style(match: re.Match[str]) -> str:
    attrs, body = match.group("attrs"), match.group("body")
    if INLINE_MARKER in body:
        return f"<style{attrs}>{body.replace(INLINE_MARKER, '')}</style>"
    return f'<style{attrs} data-premailer="ignore">{body}</style>'
