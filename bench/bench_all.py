"""The three speed goals in one run, each beside the baseline measured in the same run.

    python bench/bench_all.py [--quick]

Runs bench_send.py (1,000,000 recipients at concurrency 8 against the stand-in at 200 ms
+ up to 200 ms; baseline: concurrency 1 on 50,000, scaled by requests), bench_build.py
(`newsletter build` of 20 stories against npm's `mjml` CLI, alternating) and
bench_preview.py (save -> page updated in Chromium; baseline: the rebuild alone), then
prints one table. `--quick` sends to 100,000 instead (a smoke run; the goal is for 1M).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent


def run(script: str, json_file: Path, *args: str) -> Any:
    print(f"running {script} {' '.join(args)} ...", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, str(BENCH / script), "--json", str(json_file), *args],
        check=True,
        stdout=sys.stderr,
    )
    return json.loads(json_file.read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="send to 100,000, not 1,000,000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        sizes = ["--sizes", "100000"] if args.quick else []
        send = run("bench_send.py", out / "send.json", *sizes)
        build = run("bench_build.py", out / "build.json", "--runs", "9")
        preview = run("bench_preview.py", out / "preview.json", "--saves", "9")
    s, main_run = send["summary"], send["runs"][-1]
    rows = [
        (
            f"send {main_run['rows']:,} (goal < 45 s)",
            f"{s['measured_s']:.1f} s, {s['requests']:,} requests, {s['peak_rss_mib']:.0f} MiB",
            f"{s['baseline_s']:.1f} s ({s['baseline']})",
            f"{s['ratio']:.2f}x",
        ),
        (
            "build 20 stories (goal <= 0.5x)",
            f"{build['ours_s']:.3f} s",
            f"{build['peer_s']:.3f} s (mjml CLI)",
            f"{build['ours_s'] / build['peer_s']:.2f}x",
        ),
        (
            "newsletter --help (goal < 0.15 s)",
            f"{build['help_s']:.3f} s",
            f"{build['floor_s']:.3f} s (importing the libraries)",
            f"{build['help_s'] / 0.15:.2f}x of goal",
        ),
    ]
    for r in preview:
        of_rebuild, of_goal = r["median_ms"] / r["rebuild_ms"], r["median_ms"] / r["goal_ms"]
        rows.append(
            (
                f"preview {r['slug']} (goal < {r['goal_ms']:.0f} ms)",
                f"{r['median_ms']:.0f} ms (worst {r['worst_ms']:.0f})",
                f"{r['rebuild_ms']:.0f} ms (the rebuild alone)",
                f"{of_rebuild:.2f}x; {of_goal:.2f}x of goal",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    header = ("goal", "measured", "baseline (same run)", "ratio")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
