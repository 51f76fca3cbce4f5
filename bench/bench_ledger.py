"""Benchmark the send ledger (and the CSV import) at a million subscribers.

    python bench/bench_ledger.py                    # both phases, 1,000,000 rows
    python bench/bench_ledger.py --rows 100000 --phase ledger --json bench/results/l.json

Ledger phase: prepare the issue, then claim + mark_sent every 1,000-row batch, as `send`
does. Import phase: `SubscriberStore.import_csv` of a generated CSV. Each phase runs in a
fresh process so its peak RSS is its own, and each is compared with a baseline measured
in the same process just before it (a plain `executemany` insert of the same number of
rows into an unindexed table), so the ratios hold on a faster or busier machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from newsletter.audience.store import SubscriberStore
from newsletter.db import open_database, transaction
from newsletter.deliver.ledger import Ledger

ISSUE = "bench"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(directory: Path, rows: int) -> float:
    """Seconds for a plain executemany insert of `rows` ledger-like rows, one transaction."""
    conn = open_database(directory / "baseline.db")
    conn.execute(
        "CREATE TABLE plain (issue_id INTEGER, subscriber_id INTEGER, email_key TEXT, state TEXT)"
    )
    started = time.perf_counter()
    with transaction(conn):
        conn.executemany(
            "INSERT INTO plain VALUES (?, ?, ?, ?)",
            ((1, i, f"reader{i}@example.org", "pending") for i in range(rows)),
        )
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def ledger_phase(directory: Path, rows: int, batch_size: int) -> dict[str, Any]:
    base = baseline(directory, rows)
    conn = open_database(directory / "ledger.db")
    with transaction(conn):
        conn.executemany(
            "INSERT INTO subscribers (email, email_key, name, first_name, fields, status, "
            "created, updated) VALUES (?, ?, ?, 'Reader', '{}', 'active', 'now', 'now')",
            (
                (f"reader{i}@example.org", f"reader{i}@example.org", f"Reader {i}")
                for i in range(rows)
            ),
        )
    ledger = Ledger(conn)
    started = time.perf_counter()
    prepared = ledger.prepare(ISSUE)
    prepare = time.perf_counter() - started
    claims: list[float] = []
    marks: list[float] = []
    started = time.perf_counter()
    while True:
        t0 = time.perf_counter()
        batch = ledger.claim_batch(ISSUE, batch_size)
        t1 = time.perf_counter()
        if batch is None:
            break
        ledger.mark_sent(batch.id, f"msg-{batch.id}")
        claims.append(t1 - t0)
        marks.append(time.perf_counter() - t1)
    loop = time.perf_counter() - started
    started = time.perf_counter()
    counts = ledger.counts(ISSUE)
    count_time = time.perf_counter() - started
    assert prepared == rows and counts["sent"] == rows, counts
    per_batch = [c + m for c, m in zip(claims, marks, strict=True)]
    base_per_batch = base / (rows / batch_size)
    return {
        "phase": "ledger",
        "rows": rows,
        "batch_size": batch_size,
        "batches": len(claims),
        "baseline_s": base,
        "prepare_s": prepare,
        "claim_mark_total_s": loop,
        "claim_ms_median": 1000 * statistics.median(claims),
        "mark_ms_median": 1000 * statistics.median(marks),
        "claim_mark_ms_median": 1000 * statistics.median(per_batch),
        "claim_mark_ms_p95": 1000 * statistics.quantiles(per_batch, n=20)[-1],
        "counts_s": count_time,
        "ratio_prepare_vs_baseline": prepare / base,
        "ratio_claim_mark_total_vs_baseline": loop / base,
        "ratio_batch_vs_baseline_batch": statistics.median(per_batch) / base_per_batch,
        "peak_rss_mib": peak_rss_mib(),
    }


def import_phase(directory: Path, rows: int) -> dict[str, Any]:
    base = baseline(directory, rows)
    path = directory / "list.csv"
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write("email,name,first_name,city\n")
        for i in range(rows):
            stream.write(f"reader{i}@example.org,Reader {i},Reader,City {i % 97}\n")
    store = SubscriberStore(open_database(directory / "import.db"))
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    report = store.import_csv(path)
    elapsed = time.perf_counter() - started
    assert report.added == rows, report
    return {
        "phase": "import",
        "rows": rows,
        "baseline_s": base,
        "import_s": elapsed,
        "ratio_import_vs_baseline": elapsed / base,
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_growth_mib": peak_rss_mib() - rss_before,
    }


def show(result: dict[str, Any]) -> None:
    print(f"== {result['phase']}: {result['rows']:,} rows")
    for key, value in result.items():
        if key in ("phase", "rows"):
            continue
        text = f"{value:,.3f}" if isinstance(value, float) else f"{value:,}"
        print(f"  {key:<36} {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--phase", choices=("all", "ledger", "import"), default="all")
    parser.add_argument("--dir", type=Path, help="where the databases go (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    if args.phase == "all":
        results = []
        for phase in ("ledger", "import"):
            command = [sys.executable, __file__, "--phase", phase, "--rows", str(args.rows)]
            command += ["--batch-size", str(args.batch_size)]
            if args.dir:
                command += ["--dir", str(args.dir)]
            output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            results.append(json.loads(output.rsplit("\nJSON ", 1)[1]))
            show(results[-1])
    else:
        with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
            directory = Path(tmp)
            if args.phase == "ledger":
                result = ledger_phase(directory, args.rows, args.batch_size)
            else:
                result = import_phase(directory, args.rows)
        show(result)
        print("\nJSON " + json.dumps(result))
        results = [result]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
