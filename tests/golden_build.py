"""Golden files of the sample build. Regenerate on purpose only:

    python -m tests.golden_build

then review `git diff tests/golden/` and commit it with the change that caused it.
"""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

from newsletter.build.output import REPORT, make_build, write_build
from newsletter.config import load_settings

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "sample"
GOLDEN_FILES = ("email.html", "email.txt", "web.html", REPORT)


def _build_sample(directory: Path) -> Path:
    shutil.copy(REPO / "newsletter.toml", directory / "newsletter.toml")
    shutil.copytree(REPO / "issues" / "sample", directory / "issues" / "sample")
    settings = load_settings(directory, environ={})
    return write_build(settings, make_build(settings, "sample"))


_SESSION_BUILD: Path | None = None  # the one build of this test session


def build_sample_into(directory: Path) -> Path:
    """The sample issue built in a copy of the repository workspace; return build/sample.

    The sample is built once per session (in a scratch directory removed at exit) and
    the workspace and its build are copied into `directory` for each caller.
    """
    global _SESSION_BUILD
    if _SESSION_BUILD is None:
        scratch = Path(tempfile.mkdtemp(prefix="golden-sample-"))
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        _SESSION_BUILD = _build_sample(scratch)
    workspace = _SESSION_BUILD.parent.parent
    shutil.copytree(workspace, directory, dirs_exist_ok=True)
    return directory / _SESSION_BUILD.relative_to(workspace)


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        built = _build_sample(Path(scratch))
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in GOLDEN_FILES:
            shutil.copy(built / name, GOLDEN / name)
            print(f"updated {GOLDEN.relative_to(REPO) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
