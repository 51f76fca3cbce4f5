"""Build benchmark: email size per illustrated story; the stage split of the sample and a
20-story issue; then our whole `newsletter build` process against npm's `mjml` CLI
compiling the same 20-story MJML.

    python bench/bench_build.py [--runs 10] [--json FILE]

The peer is installed on first use into bench/.mjml (npm install mjml). Ours and the peer
are timed alternately, run by run, so that both see the same load on a shared machine.
Our processes run as an installed command does: with Python's bytecode cache
(`__pycache__`, unless PYTHONDONTWRITEBYTECODE is set, as it is in some sandboxes) and the
compiled-template cache, both warmed by a first, untimed run. Goals: `newsletter build` of
the 20-story issue at most 0.5x the peer's wall time; `newsletter --help` under 0.15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.twenty_stories import write_twenty_story_issue  # noqa: E402
from newsletter.build.render import render_issue  # noqa: E402
from newsletter.config import load_settings  # noqa: E402
from newsletter.issue.file import load_issue  # noqa: E402

PEER_DIR = REPO / "bench" / ".mjml"
PEER = PEER_DIR / "node_modules" / ".bin" / "mjml"
STAGES = ("template", "mjml", "inline", "text")
# What any build must import, as a build imports it: the CLI (typer, whose option parsing
# brings pydantic), templates, MJML, inlining (premailer with cssutils, but not requests,
# which a build skips: an empty stand-in here), YAML, HTML parsing and sanitising, and
# email_validator (the sender address in newsletter.toml is checked on every load).
IMPORT_FLOOR = (
    "import sys, types; sys.modules['requests'] = types.ModuleType('requests')\n"
    "import typer, typer._adapters, pydantic, jinja2, mjml, premailer, ruamel.yaml, lxml.html\n"
    "import nh3, email_validator"
)


def workspace(directory: Path) -> Path:
    shutil.copy(REPO / "newsletter.toml", directory / "newsletter.toml")
    shutil.copytree(REPO / "issues" / "sample", directory / "issues" / "sample")
    write_twenty_story_issue(directory)
    return directory


def stage_split(root: Path, slug: str, runs: int) -> None:
    settings = load_settings(root, environ={})
    issue = load_issue(settings.issue_dir(slug) / "issue.yaml")
    render_issue(issue, slug, settings)  # warm-up: imports and template compilation
    totals = {stage: [] for stage in STAGES}  # type: dict[str, list[float]]
    for _ in range(runs):
        seconds = render_issue(issue, slug, settings).stage_seconds
        for stage in STAGES:
            totals[stage].append(seconds[stage])
    means = {stage: statistics.mean(values) for stage, values in totals.items()}
    whole = sum(means.values())
    print(f"\n{slug}: in-process render, mean of {runs} runs = {whole * 1000:.1f} ms")
    for stage in STAGES:
        print(f"  {stage:<9}{means[stage] * 1000:8.1f} ms  {means[stage] / whole:6.1%}")


def ensure_peer() -> Path:
    if not PEER.exists():
        PEER_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--prefix", str(PEER_DIR), "--no-audit", "--no-fund", "mjml@5"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return PEER


GOAL_RATIO = 0.5
GOAL_HELP_S = 0.15


def as_installed() -> dict[str, str]:
    """The environment of a user's shell: bytecode caches written and read."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def walls(commands: dict[str, list[str]], runs: int, cwd: Path) -> dict[str, float]:
    """Median wall time of each command, run alternately after one warm-up run each."""
    env = as_installed()
    for command in commands.values():
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def versus_peer(root: Path, runs: int) -> dict[str, float]:
    settings = load_settings(root, environ={})
    issue = load_issue(settings.issue_dir("twenty") / "issue.yaml")
    mjml_file = root / "twenty.mjml"
    mjml_file.write_text(render_issue(issue, "twenty", settings).mjml, encoding="utf-8")
    peer = ensure_peer()
    newsletter = [sys.executable, "-c", "from newsletter.cli import main; main()"]
    newsletter_bin = Path(sys.executable).parent / "newsletter"
    if newsletter_bin.exists():
        newsletter = [str(newsletter_bin)]
    medians = walls(
        {
            "ours": [*newsletter, "build", "twenty"],
            "peer": [str(peer), str(mjml_file), "-o", str(root / "peer.html")],
            "floor": [sys.executable, "-c", IMPORT_FLOOR],
            "help": [*newsletter, "--help"],
        },
        runs,
        root,
    )
    ours, theirs, floor, help_s = (medians[k] for k in ("ours", "peer", "floor", "help"))
    print(f"\nwhole process, 20 stories, median of {runs} runs (alternating):")
    print(f"  newsletter build twenty (template+MJML+inline+text+checks+write): {ours:.3f} s")
    print(f"  mjml CLI (MJML -> HTML only):                                    {theirs:.3f} s")
    print(f"  importing the chosen libraries alone (no work):                  {floor:.3f} s")
    print(f"  newsletter --help:                                               {help_s:.3f} s")
    print(f"  ratio ours/peer: {ours / theirs:.2f}x   (goal: <= {GOAL_RATIO}x)")
    print(f"  ratio import floor/peer: {floor / theirs:.2f}x")
    print(f"  --help: {help_s / GOAL_HELP_S:.2f}x of the {GOAL_HELP_S} s goal")
    return {"ours_s": ours, "peer_s": theirs, "floor_s": floor, "help_s": help_s}


def sizes(root: Path) -> None:
    """email.html bytes of 10, 20 and 30 illustrated stories, and what one more story costs."""
    bytes_of = {}
    for stories in (10, 20, 30):
        slug = f"stories-{stories}"
        write_twenty_story_issue(root, slug, stories)
        settings = load_settings(root, environ={})
        rendered = render_issue(load_issue(settings.issue_dir(slug) / "issue.yaml"), slug, settings)
        bytes_of[stories] = len(rendered.email_html.encode("utf-8"))
    print("\nemail.html size, every story illustrated (Gmail clips from 102,000 bytes):")
    for stories, size in bytes_of.items():
        print(f"  {stories} stories: {size:7,} bytes")
    print(f"  bytes per story (30 - 10) / 20: {(bytes_of[30] - bytes_of[10]) / 20:,.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-peer", action="store_true", help="skip the mjml CLI comparison")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = workspace(Path(scratch))
        os.environ.pop("NEWSLETTER_WORKSPACE", None)
        sizes(root)
        for slug in ("sample", "twenty"):
            stage_split(root, slug, args.runs)
        if not args.no_peer:
            figures = versus_peer(root, args.runs)
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
