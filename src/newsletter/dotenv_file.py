"""The workspace's .env file: NAME=value lines, refused with file and line when one is not."""

from __future__ import annotations

import io
from pathlib import Path

from newsletter.errors import ConfigError
from newsletter.files import read_utf8


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    # Read once, with the one-line errors every file the editor writes gets.
    text = read_utf8(path, ConfigError, "create it from .env.example")
    _refuse_unparsable_lines(path, text)
    values = dotenv_values(stream=io.StringIO(text))
    return {key: value for key, value in values.items() if value is not None}


def _refuse_unparsable_lines(path: Path, text: str) -> None:
    """python-dotenv only logs a line it cannot parse (without the file) and skips it."""
    from dotenv.parser import parse_stream

    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.line
            raise ConfigError(
                "a line is not NAME=value (an unclosed quote, or a stray word)",
                where=f"{path}:{line}",
                fix="write it as NAME=value, closing any quote on the same line",
            )
