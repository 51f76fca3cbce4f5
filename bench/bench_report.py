"""Benchmark `newsletter report` on a large issue: 1,000,000 recipients, 5,000,000 events.

    python bench/bench_report.py                        # 1,000,000 recipients, 5,000,000 events
    python bench/bench_report.py --recipients 100000    # quicker (events scale along)

A workspace is made with the sample issue, a ledger in which every recipient was sent the
issue (1,000-row batches, as `send` records them), and SendGrid events as the webhook
stores them: processed and delivered for everyone, deferrals, bounces (hard and soft),
drops, spam reports, opens (some people open several times; a share are machine opens
only), clicks on the stories and the web version, and unsubscribes (events and consent
records). Then `newsletter report SLUG --json` runs as a whole process; its wall time and
peak RSS are reported, with the same process's baseline: `newsletter --help` (start-up
alone). Goal: under 2 s and 200 MB for the whole run at 1,000,000 / 5,000,000.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from newsletter.db import open_database, transaction, utc_now

REPO = Path(__file__).resolve().parent.parent
ISSUE = "sample"
NEWSLETTER = Path(sys.executable).parent / "newsletter"


def make_workspace(root: Path, recipients: int, seed: int) -> dict[str, int]:
    shutil.copy(REPO / "newsletter.toml", root / "newsletter.toml")
    shutil.copytree(REPO / "issues" / ISSUE, root / "issues" / ISSUE)
    conn = open_database(root / "newsletter.db")
    now = utc_now()
    with transaction(conn):
        conn.executemany(
            "INSERT INTO subscribers (id, email, email_key, created, updated) "
            "VALUES (?, ?, ?, ?, ?)",
            ((i, _address(i), _address(i), now, now) for i in range(1, recipients + 1)),
        )
        conn.execute(
            "INSERT INTO ledger_issues (id, slug, prepared) VALUES (1, ?, ?)", (ISSUE, now)
        )
        batches = (recipients + 999) // 1000
        conn.executemany(
            "INSERT INTO batches (id, issue_id, state, attempt, size, created, finished, "
            "backend) VALUES (?, 1, 'sent', 1, 1000, ?, ?, 'sendgrid')",
            ((b, now, now) for b in range(1, batches + 1)),
        )
        conn.executemany(
            "INSERT INTO ledger (issue_id, subscriber_id, email_key, state, batch_id, attempts) "
            "VALUES (1, ?, ?, 'batched', ?, 1)",
            ((i, _address(i), (i - 1) // 1000 + 1) for i in range(1, recipients + 1)),
        )
    stored = 0
    counts: dict[str, int] = {}
    start = int(time.time()) - 3 * 86_400
    rng = random.Random(seed)
    rows = _events(recipients, start, rng, counts)
    while True:
        chunk = [next(rows, None) for _ in range(50_000)]
        chunk = [row for row in chunk if row is not None]
        if not chunk:
            break
        with transaction(conn):
            conn.executemany(
                "INSERT INTO events (digest, event, email_key, issue, occurred, url, "
                "bounce_type, machine_open, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ((f"d{stored + n}", *row, now) for n, row in enumerate(chunk)),
            )
        stored += len(chunk)
    conn.execute("UPDATE batches SET finished = ?", (_iso(start),))
    conn.execute("ANALYZE")
    conn.close()
    counts["stored"] = stored
    return counts


def _address(number: int) -> str:
    return f"reader{number:07d}@example.org"


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(seconds))


def _events(
    recipients: int, start: int, rng: random.Random, counts: dict[str, int]
) -> Iterator[tuple[str, str, str, int, str | None, str | None, int]]:
    stories = [
        line.split("url: ", 1)[1].strip()
        for line in (REPO / "issues" / ISSUE / "issue.yaml").read_text().splitlines()
        if line.strip().startswith("url: ")
    ]
    utm = "?utm_source=newsletter&utm_medium=email&utm_campaign=sample"
    for i in range(1, recipients + 1):
        who = _address(i)
        yield ("processed", who, ISSUE, start, None, None, 0)
        roll = rng.random()
        if roll < 0.01:
            yield ("bounce", who, ISSUE, start + 60, None, rng.choice(["bounce", "blocked"]), 0)
            continue
        if roll < 0.015:
            yield ("dropped", who, ISSUE, start + 5, None, None, 0)
            continue
        if roll < 0.03:
            yield ("deferred", who, ISSUE, start + 30, None, None, 0)
        yield ("delivered", who, ISSUE, start + 90, None, None, 0)
        opens = rng.choice((0, 1, 2, 2, 3, 4, 5, 6))
        machine = rng.random() < 0.3
        for n in range(opens):
            yield (
                "open",
                who,
                ISSUE,
                start + rng.randrange(72 * 3600),
                None,
                None,
                int(machine and n == 0),
            )
        if opens and rng.random() < 0.3:
            for _ in range(rng.choice((1, 1, 2))):
                url = rng.choice(stories) + utm
                yield ("click", who, ISSUE, start + rng.randrange(72 * 3600), url, None, 0)
        if rng.random() < 0.002:
            yield ("spamreport", who, ISSUE, start + 600, None, None, 0)
    counts["recipients"] = recipients


def run_report(root: Path) -> tuple[float, float, dict[str, object]]:
    started = time.perf_counter()
    done = subprocess.run(
        [str(NEWSLETTER), "-w", str(root), "report", ISSUE, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return elapsed, peak, json.loads(done.stdout)


def run_help() -> float:
    started = time.perf_counter()
    subprocess.run([str(NEWSLETTER), "--help"], capture_output=True, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--keep", type=Path, help="make the workspace in this folder once and reuse it after"
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
        root = options.keep or Path(scratch)
        if not (root / "newsletter.db").is_file():
            root.mkdir(parents=True, exist_ok=True)
            made = time.perf_counter()
            counts = make_workspace(root, options.recipients, options.seed)
            print(
                f"workspace: {options.recipients:,} recipients, {counts['stored']:,} events "
                f"(made in {time.perf_counter() - made:.0f} s)"
            )
        # The schema as the installed version has it (a kept workspace may predate it).
        open_database(root / "newsletter.db").close()
        helps = [run_help() for _ in range(options.runs)]
        reports = [run_report(root) for _ in range(options.runs)]
        best = min(reports, key=lambda item: item[0])
        data = best[2]
        print(f"baseline `newsletter --help`: {min(helps):.2f} s")
        print(
            f"`newsletter report {ISSUE} --json`: {best[0]:.2f} s "
            f"(runs: {', '.join(f'{r[0]:.2f}' for r in reports)}), peak RSS {best[1]:.0f} MiB"
        )
        print(f"ratio to the baseline: {best[0] / min(helps):.1f}x")
        print(
            f"numbers: sent {data['sent']:,}, delivered {data['delivered']:,}, "
            f"unique opens {data['opens_unique']:,} (+{data['opens_machine_only']:,} machine), "
            f"unique clicks {data['clicks_unique']:,}"
        )
        goal = "met" if best[0] < 2 and best[1] < 200 else "NOT met"
        print(f"goal (< 2 s and < 200 MB at 1,000,000 / 5,000,000): {goal}")


if __name__ == "__main__":
    main()
