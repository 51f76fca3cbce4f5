"""The built-in email templates and a workspace's overrides: list, eject one, diff.

A workspace holds only the templates it changes, so template fixes in a new release
reach every newsletter that has not overridden that file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from newsletter.config import Settings
from newsletter.errors import UserError

_SKIPPED_FOLDERS = ("preview",)  # the preview page's own templates are not the email's


@dataclass(frozen=True)
class TemplateState:
    name: str  # relative to templates/, e.g. partials/footer.mjml.j2
    overridden: bool
    differs: bool


def builtin_names() -> list[str]:
    names: list[str] = []
    stack: list[tuple[Traversable, str]] = [(resources.files("newsletter") / "templates", "")]
    while stack:
        folder, prefix = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name not in _SKIPPED_FOLDERS:
                stack.append((entry, f"{prefix}{entry.name}/"))
            elif entry.name.endswith(".j2"):
                names.append(prefix + entry.name)
    return sorted(names)


def builtin_text(name: str) -> str:
    name = resolve_name(name)
    entry = resources.files("newsletter") / "templates"
    for part in name.split("/"):
        entry = entry / part
    return entry.read_text(encoding="utf-8")


def template_states(settings: Settings) -> list[TemplateState]:
    states = []
    for name in builtin_names():
        override = _override_text(settings, name)
        states.append(
            TemplateState(name, override is not None, override not in (None, builtin_text(name)))
        )
    return states


def eject_template(settings: Settings, name: str) -> Path:
    """Copy one built-in template into the workspace's templates/ to edit it there."""
    name = resolve_name(name)
    text = builtin_text(name)
    target = settings.path("templates") / name
    if target.exists():
        raise UserError(
            "the workspace already overrides this template",
            where=target,
            fix="edit it there, or delete it to use the built-in one again",
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserError(
            f"cannot write the template ({exc.strerror})",
            where=target,
            fix="check that the workspace is writable by this user",
        ) from None
    return target


def template_diff(settings: Settings) -> str:
    """A unified diff from each built-in template to the workspace's override of it."""
    chunks: list[str] = []
    for state in template_states(settings):
        if not state.differs:
            continue
        override = _override_text(settings, state.name) or ""
        chunks.extend(
            difflib.unified_diff(
                builtin_text(state.name).splitlines(keepends=True),
                override.splitlines(keepends=True),
                fromfile=f"built-in/{state.name}",
                tofile=f"templates/{state.name}",
            )
        )
    return "".join(line if line.endswith("\n") else line + "\n" for line in chunks)


def resolve_name(name: str) -> str:
    """A built-in template's full name from it or its short name (footer, newsletter.txt.j2)."""
    names = builtin_names()
    if name in names:
        return name
    matches = [n for n in names if n.rpartition("/")[2] in (name, f"{name}.mjml.j2")]
    if len(matches) == 1:
        return matches[0]
    raise UserError(
        f"no built-in template named {name!r}",
        where="NAME",
        fix="pick one that `newsletter templates list` shows, e.g. footer",
    )


def _override_text(settings: Settings, name: str) -> str | None:
    path = settings.path("templates") / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UserError(
            f"cannot read the override ({reason})", where=path, fix="save it as UTF-8 text"
        ) from None
