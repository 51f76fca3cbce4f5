"""Per-recipient merge tags: written into the build, filled in at send time."""

from __future__ import annotations

import re

MERGE_TAG_NAMES = ("first_name", "email", "unsubscribe_url")
MERGE_TAGS: dict[str, str] = {name: f"%%{name}%%" for name in MERGE_TAG_NAMES}
_ANY_TAG = re.compile(r"%%[a-z_]+%%")


def is_merge_tag(value: str) -> bool:
    return value in MERGE_TAGS.values()


def unfilled(text: str) -> set[str]:
    """Merge tags still present in a personalised message (there should be none)."""
    return set(_ANY_TAG.findall(text))


def fill(text: str, values: dict[str, str]) -> str:
    for name, tag in MERGE_TAGS.items():
        if name in values:
            text = text.replace(tag, values[name])
    return text
