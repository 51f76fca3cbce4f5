"""Compiled Jinja2 templates kept between runs, for the email's and the report page's."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import jinja2


class _TemplateCache(jinja2.FileSystemBytecodeCache):
    """Jinja2 checks each entry against the SHA-1 of its template's source (and the Python
    version), so an edited template is compiled again."""

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        # A full disk or a read-only home costs the compile, nothing else.
        with contextlib.suppress(OSError):
            super().dump_bytecode(bucket)


def compiled_templates() -> jinja2.BytecodeCache | None:
    """The cache in $XDG_CACHE_HOME/newsletter/templates, or None where it cannot be made."""
    home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    directory = Path(home) / "newsletter" / "templates"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return None
    return _TemplateCache(str(directory))
