"""Per-recipient merge tags: written into the build, filled in at send time."""

from __future__ import annotations

import re

MERGE_TAG_NAMES = ("first_name", "email", "unsubscribe_url")
MERGE_TAGS: dict[str, str] = {name: f"%%{name}%%" for name in MERGE_TAG_NAMES}
_ANY_TAG = re.compile(r"%%[a-z_]+%%")
_KNOWN_TAG = re.compile("|".join(re.escape(tag) for tag in MERGE_TAGS.values()))
# The opening of a merge tag (%%) or of a Jinja2 tag ({{, {%, {#). A zero-width space after
# the first character keeps the text readable but inert; the lookahead catches every
# overlapping pair, so "%%%" or "{{{{" cannot leave a marker behind.
_MARKER_START = re.compile(r"%(?=%)|\{(?=[{%#])")


def is_merge_tag(value: str) -> bool:
    return value in MERGE_TAGS.values()


def neutralise_markers(text: str) -> str:
    """Content as text that can never become a merge tag or a template tag."""
    return _MARKER_START.sub(lambda match: match.group() + "\u200b", text)


def unfilled(text: str) -> set[str]:
    """Merge tags still present in a personalised message (there should be none)."""
    return set(_ANY_TAG.findall(text))


def fill(text: str, values: dict[str, str]) -> str:
    """Fill every known tag in one pass: a value is never searched for tags itself."""
    by_tag = {MERGE_TAGS[name]: value for name, value in values.items() if name in MERGE_TAGS}
    return _KNOWN_TAG.sub(lambda match: by_tag.get(match.group(), match.group()), text)
