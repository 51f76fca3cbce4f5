"""`newsletter add` of one saved page, timed as a whole process (start-up and imports included).

    python bench/bench_add.py [--page pages/bloomberg.com1.html] [--runs 10]
                              [--newsletter .venv/bin/newsletter] [--shared ../shared]

Makes a scratch workspace, then runs `newsletter add` on the page RUNS times, each time into a
fresh copy of the issue, and prints the median, min and max wall seconds. Give --newsletter
another checkout's entry point to compare two versions; an external whole-process timer can
run the same command (printed with --command).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def prepare(newsletter: str, workspace: Path) -> None:
    for args in (["init", str(workspace)], ["--workspace", str(workspace), "new", "t"]):
        subprocess.run([newsletter, *args], check=True, capture_output=True)


def add_once(newsletter: str, workspace: Path, page: Path, pristine: bytes) -> float:
    (workspace / "issues" / "t" / "issue.yaml").write_bytes(pristine)
    started = time.perf_counter()
    subprocess.run(
        [newsletter, "--workspace", str(workspace), "add", "t", str(page)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", default="pages/bloomberg.com1.html")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--newsletter", default=str(Path(sys.executable).parent / "newsletter"))
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    parser.add_argument("--command", action="store_true", help="print the command and exit")
    args = parser.parse_args(argv)
    page = args.shared / "fixtures" / args.page
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch) / "ws"
        prepare(args.newsletter, workspace)
        if args.command:
            print(f"{args.newsletter} --workspace {workspace} add t {page}")
            shutil.rmtree(workspace)
            return 0
        pristine = (workspace / "issues" / "t" / "issue.yaml").read_bytes()
        add_once(args.newsletter, workspace, page, pristine)  # warm the file cache
        times = [add_once(args.newsletter, workspace, page, pristine) for _ in range(args.runs)]
    print(
        f"add {args.page}: median {statistics.median(times):.3f} s "
        f"(min {min(times):.3f}, max {max(times):.3f}, {args.runs} runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
