"""Where the shared, read-only inputs live: ../shared beside the repository (never copied in)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    return REPO.parent / "shared"


def fixture(relative: str) -> Path:
    """A real page or feed from ../shared/fixtures (see SOURCES.md there)."""
    path = shared_dir() / "fixtures" / relative
    assert path.is_file(), f"missing shared fixture {path}"
    return path


def page_dump() -> Path:
    return shared_dir() / "content" / "000_f6293f6310364e1f.txt"
