"""Send benchmark: the sample issue to 100,000 and 1,000,000 subscribers through the stub.

    python bench/bench_send.py                       # 100,000 then 1,000,000
    python bench/bench_send.py --sizes 100000 --json bench/results/send.json

For each list size: a fresh workspace, the list imported through `SubscriberStore.import_csv`
(not timed), the SendGrid stub started in its own process (so it does not share the
sender's GIL; `--no-record-bodies`, every request still validated against SendGrid's
OpenAPI description), then the send run in a fresh child process so that its peak RSS is
its own. Reported: wall time, requests, peak RSS of the sender, and the send loop's time
split between the database (ledger), payload building (and JSON encoding) and HTTP (the
request and the stub's answer). Goals: 1,000,000 in under 60 s in exactly 1,000 requests,
peak RSS under 250 MB and within 1.2x of the 100,000 run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ISSUE = "sample"
API_KEY = "SG.bench"
SECRET = "bench-unsubscribe-secret-0123456789"
GOAL_SECONDS_1M = 60.0
GOAL_RSS_MIB = 250.0
GOAL_RSS_RATIO = 1.2


def make_workspace(root: Path, rows: int) -> Path:
    import shutil

    from newsletter.audience.store import SubscriberStore
    from newsletter.config import load_settings
    from newsletter.db import open_database

    root.mkdir(parents=True)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    # The sample's example.org links go to the local stand-in on purpose.
    config = config.replace("[delivery]\n", "[delivery]\nallow_placeholders = true\n")
    (root / "newsletter.toml").write_text(config, encoding="utf-8")
    shutil.copytree(REPO / "issues" / ISSUE, root / "issues" / ISSUE)
    csv = root / "subscribers.csv"
    with csv.open("w", encoding="utf-8", newline="") as stream:
        stream.write("email,name,first_name\n")
        for i in range(rows):
            stream.write(f"reader{i:07d}@example.org,Reader {i},Reader\n")
    conn = open_database(load_settings(root).database_path)
    try:
        report = SubscriberStore(conn).import_csv(csv)
    finally:
        conn.close()
    assert report.added == rows, report
    csv.unlink()
    return root


def child(workspace: Path) -> None:
    """Run one send (as `newsletter send sample --yes --no-sync` does) and print its figures."""
    from newsletter.config import load_settings
    from newsletter.deliver.options import SendOptions
    from newsletter.deliver.sender import Sender

    started = time.perf_counter()
    settings = load_settings(workspace)
    with Sender(settings, ISSUE, SendOptions(sync=False)) as sender:
        preflight = sender.preflight()
        ready = time.perf_counter()
        summary = sender.send()
    finished = time.perf_counter()
    result = {
        "recipients": preflight.recipients,
        "sent": summary.sent,
        "failed": summary.failed,
        "unknown": summary.unknown,
        "requests": summary.requests,
        "wall_s": finished - started,
        "preflight_s": ready - started,
        "send_loop_s": finished - ready,
        "database_s": summary.timings["database"],
        "build_s": summary.timings["build"],
        "http_s": summary.timings["http"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps(result))


def run_size(rows: int, directory: Path) -> dict[str, Any]:
    from tests.sendgrid_stub import StubProcess

    print(f"{rows:,} subscribers: importing (not timed) ...", file=sys.stderr, flush=True)
    workspace = make_workspace(directory / f"ws-{rows}", rows)
    extra = ["--no-record-bodies"]
    with StubProcess(API_KEY, port_file=directory / f"stub-{rows}.port", extra_args=extra) as stub:
        (workspace / ".env").write_text(
            f"SENDGRID_API_KEY={API_KEY}\nSENDGRID_API_HOST={stub.url}\n"
            f"NEWSLETTER_UNSUBSCRIBE_SECRET={SECRET}\n",
            encoding="utf-8",
        )
        print(f"{rows:,} subscribers: sending ...", file=sys.stderr, flush=True)
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(workspace)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        deliveries = stub.deliveries(issue=ISSUE)
    result["rows"] = rows
    result["delivered_once"] = len(deliveries) == rows and set(deliveries.values()) == {1}
    loop = result["send_loop_s"]
    for part in ("database", "build", "http"):
        result[f"{part}_share"] = result[f"{part}_s"] / loop
    result["recipients_per_s"] = result["sent"] / loop
    return result


def report(results: list[dict[str, Any]]) -> None:
    for r in results:
        print(
            f"{r['rows']:>9,} subscribers: {r['wall_s']:6.1f} s wall "
            f"(preflight {r['preflight_s']:.1f} s, send loop {r['send_loop_s']:.1f} s), "
            f"{r['requests']:,} requests, peak RSS {r['peak_rss_mib']:.0f} MiB, "
            f"{r['recipients_per_s']:,.0f} recipients/s, delivered once: {r['delivered_once']}"
        )
        print(
            f"{'':>23}send loop: database {r['database_share']:.0%}, payload building "
            f"{r['build_share']:.0%}, HTTP {r['http_share']:.0%}"
        )
    by_rows = {r["rows"]: r for r in results}
    big, small = by_rows.get(1_000_000), by_rows.get(100_000)
    if big:
        print(
            f"1,000,000: {big['wall_s'] / GOAL_SECONDS_1M:.2f}x of the {GOAL_SECONDS_1M:.0f} s "
            f"goal, {big['requests'] / 1000:.2f}x of 1,000 requests, "
            f"{big['peak_rss_mib'] / GOAL_RSS_MIB:.2f}x of the {GOAL_RSS_MIB:.0f} MB RSS goal"
        )
    if big and small:
        print(
            f"1,000,000 vs 100,000: time {big['wall_s'] / small['wall_s']:.1f}x for 10x the "
            f"list, peak RSS {big['peak_rss_mib'] / small['peak_rss_mib']:.2f}x "
            f"(goal under {GOAL_RSS_RATIO}x)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        results = [run_size(rows, Path(tmp)) for rows in args.sizes]
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
