"""The workspace's .env file: NAME=value lines, refused with file and line when one is not."""

from __future__ import annotations

from pathlib import Path

from newsletter.errors import ConfigError


def read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    try:
        _refuse_unparsable_lines(path)
        values = dotenv_values(path, encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte {exc.start})", where=path, fix="save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot read it ({exc.strerror})", where=path, fix="check the file's permissions"
        ) from None
    return {key: value for key, value in values.items() if value is not None}


def _refuse_unparsable_lines(path: Path) -> None:
    """python-dotenv only logs a line it cannot parse (without the file) and skips it."""
    from dotenv.parser import parse_stream

    with path.open(encoding="utf-8") as stream:
        for binding in parse_stream(stream):
            if binding.error:
                line = binding.original.line
                raise ConfigError(
                    "a line is not NAME=value (an unclosed quote, or a stray word)",
                    where=f"{path}:{line}",
                    fix="write it as NAME=value, closing any quote on the same line",
                )
