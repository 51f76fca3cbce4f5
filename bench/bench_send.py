"""Send benchmark: the sample issue to 1,000,000 subscribers through the stub at real-world
latency, requests in flight against one at a time.

    python bench/bench_send.py        # 1,000,000 at concurrency 8; baseline 50,000 at 1
    python bench/bench_send.py --sizes 100000 --latency 0 --jitter 0 --json send.json

The stub answers each mail/send request after `--latency` plus up to `--jitter` seconds
(default 0.2 + 0.2, as SendGrid takes a few hundred milliseconds for 1,000
personalizations). For each run: a fresh workspace with `[delivery] concurrency` set, the
list imported through `SubscriberStore.import_csv` (not timed), the SendGrid stub started in
its own process (so it does not share the sender's GIL; `--no-record-bodies`, every request
still validated against SendGrid's OpenAPI description), then the send run in a fresh child
process so that its peak RSS is its own. Reported: wall time, requests, peak RSS of the
sender, the CPU time of the sender and of the stub (which validates every body: on the same
cores, it is part of what the sender waits for), the load average after the run (the machine
may be shared), the most requests the stub answered at once, and the send loop's time split
between the database (ledger), payload building (and JSON encoding) and HTTP (the request
and the stub's answer; with requests in flight these overlap, so the shares add up to more
than 100%).

The baseline is the same send with concurrency 1. At 0.3 s a request it would take about
5 minutes for 1,000,000, so it is measured on `--baseline-size` recipients (50,000 = 50
requests) and scaled to the full list by the number of requests (the time per request
does not depend on the list's length: bench_ledger.py). Goals: 1,000,000 in under 45 s in
exactly 1,000 requests, peak RSS under 250 MB.
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
GOAL_SECONDS_1M = 45.0
GOAL_RSS_MIB = 250.0


def make_workspace(root: Path, rows: int, concurrency: int) -> Path:
    import shutil

    from newsletter.audience.store import SubscriberStore
    from newsletter.config import load_settings
    from newsletter.db import open_database

    root.mkdir(parents=True)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    # The sample's example.org links go to the local stand-in on purpose.
    config = config.replace(
        "[delivery]\n", f"[delivery]\nallow_placeholders = true\nconcurrency = {concurrency}\n"
    )
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


def peak_rss_mib() -> float:
    """This process's own peak RSS. Not ru_maxrss: Linux carries that over from the parent
    (the benchmark, which holds the stand-in's million answers by then) into a child
    started with vfork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
    usage = resource.getrusage(resource.RUSAGE_SELF)
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
        "peak_rss_mib": peak_rss_mib(),
        "cpu_s": usage.ru_utime + usage.ru_stime,
    }
    print(json.dumps(result))


def process_cpu(pid: int) -> float | None:
    """CPU seconds a process has used (Linux /proc), or None where that is not known."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_send(
    rows: int, concurrency: int, directory: Path, args: argparse.Namespace
) -> dict[str, Any]:
    from tests.sendgrid_stub import StubProcess

    label = f"{rows:,} subscribers, concurrency {concurrency}"
    print(f"{label}: importing (not timed) ...", file=sys.stderr, flush=True)
    workspace = make_workspace(directory / f"ws-{rows}-{concurrency}", rows, concurrency)
    extra = ["--no-record-bodies", "--delay", str(args.latency), "--jitter", str(args.jitter)]
    port_file = directory / f"stub-{rows}-{concurrency}.port"
    with StubProcess(API_KEY, port_file=port_file, extra_args=extra) as stub:
        (workspace / ".env").write_text(
            f"SENDGRID_API_KEY={API_KEY}\nSENDGRID_API_HOST={stub.url}\n"
            f"NEWSLETTER_UNSUBSCRIBE_SECRET={SECRET}\n",
            encoding="utf-8",
        )
        print(f"{label}: sending ...", file=sys.stderr, flush=True)
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
        stub_cpu = process_cpu(stub.process.pid) if stub.process else None
        done = subprocess.run(
            [sys.executable, __file__, "--child", str(workspace)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        deliveries = stub.deliveries(issue=ISSUE)
        result["peak_in_flight"] = stub.peak_in_flight()
        if stub_cpu is not None and stub.process:
            result["stub_cpu_s"] = (process_cpu(stub.process.pid) or 0.0) - stub_cpu
    result["rows"] = rows
    result["load"] = " ".join(f"{x:.1f}" for x in os.getloadavg())  # the machine is shared
    result["concurrency"] = concurrency
    result["delivered_once"] = len(deliveries) == rows and set(deliveries.values()) == {1}
    loop = result["send_loop_s"]
    for part in ("database", "build", "http"):
        result[f"{part}_share"] = result[f"{part}_s"] / loop
    result["recipients_per_s"] = result["sent"] / loop
    return result


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    print(f"stub latency {args.latency * 1000:.0f} ms + up to {args.jitter * 1000:.0f} ms jitter")
    for r in results:
        print(
            f"{r['rows']:>9,} subscribers, concurrency {r['concurrency']}: {r['wall_s']:6.1f} s "
            f"wall (preflight {r['preflight_s']:.1f} s, send loop {r['send_loop_s']:.1f} s), "
            f"{r['requests']:,} requests, at most {r['peak_in_flight']} at once, "
            f"peak RSS {r['peak_rss_mib']:.0f} MiB, sender CPU {r['cpu_s']:.1f} s, "
            f"stub CPU {r.get('stub_cpu_s', float('nan')):.1f} s, load {r['load']}, "
            f"{r['recipients_per_s']:,.0f} recipients/s, "
            f"delivered once: {r['delivered_once']}"
        )
        print(
            f"{'':>23}send loop: database {r['database_share']:.0%}, payload building "
            f"{r['build_share']:.0%}, HTTP {r['http_share']:.0%}"
        )
    main_run, base = results[-1], results[0]
    # The baseline scaled to the main run's list by requests (the send loop is per request).
    scaled = base["preflight_s"] + base["send_loop_s"] * main_run["requests"] / base["requests"]
    summary = {
        "goal": f"{main_run['rows']:,} recipients in < {GOAL_SECONDS_1M:.0f} s",
        "measured_s": main_run["wall_s"],
        "baseline_s": scaled,
        "baseline": f"concurrency 1 on {base['rows']:,}, scaled by requests",
        "ratio": main_run["wall_s"] / scaled,
        "requests": main_run["requests"],
        "peak_rss_mib": main_run["peak_rss_mib"],
    }
    print(
        f"{main_run['rows']:,} at concurrency {main_run['concurrency']}: "
        f"{main_run['wall_s']:.1f} s against {scaled:.1f} s for concurrency 1 "
        f"({summary['baseline']}): {summary['ratio']:.2f}x; "
        f"{main_run['wall_s'] / GOAL_SECONDS_1M:.2f}x of the {GOAL_SECONDS_1M:.0f} s goal, "
        f"{main_run['requests']:,} requests, peak RSS {main_run['peak_rss_mib']:.0f} MiB "
        f"({main_run['peak_rss_mib'] / GOAL_RSS_MIB:.2f}x of the {GOAL_RSS_MIB:.0f} MB goal)"
    )
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--baseline-size", type=int, default=50_000, help="sent at concurrency 1")
    parser.add_argument("--latency", type=float, default=0.2, help="stub answer delay (s)")
    parser.add_argument("--jitter", type=float, default=0.2, help="plus up to this (s)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory(prefix="bench-send-") as tmp:
        results = [run_send(args.baseline_size, 1, Path(tmp), args)]
        results += [run_send(rows, args.concurrency, Path(tmp), args) for rows in args.sizes]
    summary = report(results, args)
    if args.json:
        payload = {"summary": summary, "runs": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
