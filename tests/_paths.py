"""Where the shared, read-only inputs live: ../shared beside the repository (never copied in)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_DIR_ENV = "NEWSLETTER_SHARED_DIR"
# A clone made elsewhere (CI's clean clone) still finds the workplace's shared folder.
FALLBACK_SHARED = Path("/work/shared")


def shared_dir() -> Path:
    """$NEWSLETTER_SHARED_DIR, else ../shared beside the repository, else /work/shared."""
    override = os.environ.get(SHARED_DIR_ENV)
    if override:
        return Path(override)
    beside = REPO.parent / "shared"
    if beside.is_dir() or not FALLBACK_SHARED.is_dir():
        return beside
    return FALLBACK_SHARED


def fixture(relative: str) -> Path:
    """A real page or feed from ../shared/fixtures (see SOURCES.md there)."""
    path = shared_dir() / "fixtures" / relative
    assert path.is_file(), f"missing shared fixture {path}"
    return path


def page_dump() -> Path:
    return shared_dir() / "content" / "000_f6293f6310364e1f.txt"
