"""pydantic's validation errors in the tool's own words (no "Input should be ...")."""

from __future__ import annotations

from typing import Any

_KIND_NAMES = {
    "string_type": "text",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "list_type": "a list (lines starting with -)",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
}


def plain_message(error: Any) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as a short phrase."""
    kind = str(error["type"])
    context = error.get("ctx") or {}
    given = _shown(error.get("input"))
    if kind == "missing":
        return "is required"
    if kind in _KIND_NAMES:
        return f"must be {_KIND_NAMES[kind]}{given}"
    if kind in {"too_short", "string_too_short"}:
        least = context.get("min_length")
        if least == 1:
            return "must not be empty"
        unit = "characters" if kind.startswith("string") else "items"
        return f"needs at least {least} {unit}"
    if kind in {"too_long", "string_too_long"}:
        unit = "characters" if kind.startswith("string") else "items"
        return f"has more than {context.get('max_length')} {unit}{given}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {context.get(key)}{given}"
    if kind == "literal_error":
        return f"must be one of {context.get('expected')}{given}"
    if kind == "extra_forbidden":
        return "unknown setting"
    return str(error["msg"]).removeprefix("Value error, ")


def _shown(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) and not isinstance(value, (dict, list)):
        text = repr(value)
        return f" (it is {text if len(text) <= 40 else text[:37] + '...'})"
    if isinstance(value, list):
        return " (it is a list)"
    if isinstance(value, dict):
        return " (it is a mapping)"
    return ""
