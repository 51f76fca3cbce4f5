"""Golden files of the sample build. Regenerate on purpose only:

    python -m tests.golden_build

then review `git diff tests/golden/` and commit it with the change that caused it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from newsletter.build.output import REPORT, make_build, write_build
from newsletter.config import load_settings

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "sample"
GOLDEN_FILES = ("email.html", "email.txt", "web.html", REPORT)


def build_sample_into(directory: Path) -> Path:
    """Build the sample issue in a copy of the repository workspace; return build/sample."""
    shutil.copy(REPO / "newsletter.toml", directory / "newsletter.toml")
    shutil.copytree(REPO / "issues" / "sample", directory / "issues" / "sample")
    settings = load_settings(directory, environ={})
    return write_build(settings, make_build(settings, "sample"))


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        built = build_sample_into(Path(scratch))
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in GOLDEN_FILES:
            shutil.copy(built / name, GOLDEN / name)
            print(f"updated {GOLDEN.relative_to(REPO) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
