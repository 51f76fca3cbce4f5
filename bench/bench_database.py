"""Database benchmark: the send ledger on PostgreSQL against the same on SQLite, in one run.

    python bench/bench_database.py                       # 1,000,000 recipients
    python bench/bench_database.py --recipients 100000 --json db.json

For each engine, a fresh workspace (the same newsletter.toml and sample issue as
bench_send.py, `[delivery] concurrency = 8`) on SQLite, then on PostgreSQL (DATABASE_URL in
the workspace's .env, a new database on a throwaway cluster started for the run with fsync
on, as tests/_postgres.py starts it for the tests but durable, since SQLite waits for the
disk too). Two steps, each in a fresh child process so that its peak RSS is its own:

1. import: the list of `--recipients` through `SubscriberStore.import_csv`;
2. send: bench_send.py's child (`newsletter send sample --yes --no-sync`) through the local
   SendGrid stand-in in its own process, answering after `--latency` + up to `--jitter`
   seconds (bench_send.py's defaults, 0.2 + 0.2), then a check that every recipient got
   exactly one message. The sender's calls of `Ledger.prepare` (the preflight's, rolled
   back, and the send's own) are timed on the way: "of which prepare".

Reported per step and engine: wall time and the peak RSS of the process doing it; on
PostgreSQL also the server's memory, sampled from /proc every 0.2 s: the peak of the sum of
the proportional set sizes (PSS: shared memory divided among the processes sharing it) of
the postmaster and all its children, and the peak RSS of the busiest single backend.
Then the ratio PostgreSQL / SQLite (goal: within 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import bench_send  # noqa: E402  (bench/ is not a package)

GOAL_RATIO = 1.5
ENGINES = ("sqlite", "postgresql")
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


# -- the workspace -------------------------------------------------------------------------


def make_workspace(root: Path, rows: int, concurrency: int, database_url: str | None) -> Path:
    """bench_send.make_workspace without the import (timed here): config, issue, CSV."""
    root.mkdir(parents=True)
    config = (REPO / "newsletter.toml").read_text(encoding="utf-8")
    config = config.replace(
        "[delivery]\n", f"[delivery]\nallow_placeholders = true\nconcurrency = {concurrency}\n"
    )
    (root / "newsletter.toml").write_text(config, encoding="utf-8")
    shutil.copytree(REPO / "issues" / bench_send.ISSUE, root / "issues" / bench_send.ISSUE)
    with (root / "subscribers.csv").open("w", encoding="utf-8", newline="") as stream:
        stream.write("email,name,first_name\n")
        for i in range(rows):
            stream.write(f"reader{i:07d}@example.org,Reader {i},Reader\n")
    write_env(root, database_url)
    return root


def write_env(root: Path, database_url: str | None, stub_url: str | None = None) -> None:
    lines = [f"NEWSLETTER_UNSUBSCRIBE_SECRET={bench_send.SECRET}"]
    if database_url:
        lines.append(f"DATABASE_URL={database_url}")
    if stub_url:
        lines += [f"SENDGRID_API_KEY={bench_send.API_KEY}", f"SENDGRID_API_HOST={stub_url}"]
    (root / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


# -- the steps, each in a child process ----------------------------------------------------


def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mib": bench_send.peak_rss_mib(), "cpu_s": usage.ru_utime + usage.ru_stime}


def child_import(workspace: Path) -> None:
    from newsletter.audience.store import SubscriberStore
    from newsletter.config import load_settings
    from newsletter.db import open_database

    started = time.perf_counter()
    conn = open_database(load_settings(workspace).database)
    try:
        report = SubscriberStore(conn).import_csv(workspace / "subscribers.csv")
    finally:
        conn.close()
    wall = time.perf_counter() - started
    print(json.dumps({"wall_s": wall, "added": report.added, **_usage()}))


def child_send(workspace: Path) -> None:
    """bench_send.child, timing the sender's calls of `Ledger.prepare` on the way (the
    preflight's, rolled back, and the send's own), with this process's own peak RSS."""
    import contextlib
    import io

    from newsletter.deliver.ledger import Ledger

    prepare = Ledger.prepare
    spent: list[float] = []

    def timed(self: Ledger, issue: str, **options: Any) -> int:
        started = time.perf_counter()
        try:
            return prepare(self, issue, **options)
        finally:
            spent.append(time.perf_counter() - started)

    Ledger.prepare = timed  # type: ignore[method-assign]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        bench_send.child(workspace)
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    result["peak_rss_mib"] = bench_send.peak_rss_mib()
    result["prepare_s"] = sum(spent)
    result["prepare_calls"] = len(spent)
    print(json.dumps(result))


def run_child(step: str, workspace: Path) -> dict[str, Any]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    env.pop("DATABASE_URL", None)  # the workspace's .env says which engine
    done = subprocess.run(
        [sys.executable, __file__, f"--child-{step}", str(workspace)],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode:
        sys.stderr.write(done.stderr[-3000:])
        raise SystemExit(f"the {step} step failed in {workspace}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- the PostgreSQL server's memory ----------------------------------------------------------


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of a process in KiB; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except (OSError, ValueError):
        return 0, 0
    return pss, rss


class ServerMemory:
    """Samples the postmaster and its children until stopped: peak summed PSS, peak RSS of
    any one process. Sampling can miss a peak shorter than its interval."""

    def __init__(self, postmaster: int, interval: float = 0.2) -> None:
        self.postmaster = postmaster
        self.interval = interval
        self.peak_pss_kib = 0
        self.peak_process_rss_kib = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        pids = [self.postmaster, *_children(self.postmaster)]
        total = 0
        for pid in pids:
            pss, rss = _memory_kib(pid)
            total += pss
            self.peak_process_rss_kib = max(self.peak_process_rss_kib, rss)
        self.peak_pss_kib = max(self.peak_pss_kib, total)
        self.processes = max(self.processes, len(pids))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> ServerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict[str, float]:
        return {
            "server_pss_mib": self.peak_pss_kib / 1024,
            "server_backend_rss_mib": self.peak_process_rss_kib / 1024,
            "server_processes": self.processes,
        }


@contextmanager
def measured(postmaster: int | None) -> Iterator[dict[str, float]]:
    figures: dict[str, float] = {}
    if postmaster is None:
        yield figures
        return
    with ServerMemory(postmaster) as memory:
        yield figures
    figures.update(memory.figures())


# -- one engine -------------------------------------------------------------------------------


def run_engine(
    engine: str,
    directory: Path,
    args: argparse.Namespace,
    database_url: str | None,
    postmaster: int | None,
) -> dict[str, Any]:
    from tests.sendgrid_stub import StubProcess

    name, rows = NAMES[engine], args.recipients
    say = lambda what: print(f"{name}: {what} ...", file=sys.stderr, flush=True)  # noqa: E731
    workspace = make_workspace(directory / engine, rows, args.concurrency, database_url)
    result: dict[str, Any] = {"engine": engine, "rows": rows}

    say(f"importing {rows:,}")
    with measured(postmaster) as server:
        result["import"] = run_child("import", workspace)
    result["import"].update(server)
    assert result["import"]["added"] == rows, result["import"]

    extra = ["--no-record-bodies", "--delay", str(args.latency), "--jitter", str(args.jitter)]
    with StubProcess(
        bench_send.API_KEY, port_file=directory / f"stub-{engine}.port", extra_args=extra
    ) as stub:
        write_env(workspace, database_url, stub.url)
        say(f"sending to {rows:,}")
        with measured(postmaster) as server:
            send = run_child("send", workspace)
        send.update(server)
        deliveries = stub.deliveries(issue=bench_send.ISSUE)
        send["peak_in_flight"] = stub.peak_in_flight()
    send["delivered_once"] = len(deliveries) == rows and set(deliveries.values()) == {1}
    del deliveries
    result["send"] = send
    return result


# -- the report -------------------------------------------------------------------------------


def _cell(step: dict[str, Any]) -> str:
    text = f"{step['wall_s']:.1f} s, {step['peak_rss_mib']:.0f} MiB"
    if "server_pss_mib" in step:
        text += (
            f" (server {step['server_pss_mib']:.0f} MiB PSS, "
            f"backend {step['server_backend_rss_mib']:.0f} MiB RSS)"
        )
    return text


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    rows = args.recipients
    print(
        f"{rows:,} recipients; stand-in at {args.latency * 1000:.0f} ms + up to "
        f"{args.jitter * 1000:.0f} ms, concurrency {args.concurrency}; wall time, peak RSS "
        "of the process doing the step (PostgreSQL: and of the server)"
    )
    engines = [e for e in ENGINES if e in results]
    labels = {"import": f"import {rows:,}", "send": f"send {rows:,}"}
    table: list[tuple[str, ...]] = []
    ratios: dict[str, float] = {}

    def ratio_of(step: str, key: str) -> str:
        if len(engines) < 2:
            return ""
        lite, pg = (results[e][step][key] for e in ENGINES)
        ratios[key.removesuffix("_s") if step == "send" and key != "wall_s" else step] = pg / lite
        return f"{pg / lite:.2f}x"

    for step, label in labels.items():
        cells = [_cell(results[e][step]) for e in engines]
        table.append((label, *cells, ratio_of(step, "wall_s")))
    table.append(
        (
            "  of which prepare",
            *(
                f"{results[e]['send']['prepare_s']:.1f} s "
                f"({results[e]['send']['prepare_calls']} calls)"
                for e in engines
            ),
            ratio_of("send", "prepare_s"),
        )
    )
    header = ("step", *(NAMES[e] for e in engines), "ratio")
    widths = [max(len(r[i]) for r in (header, *table)) for i in range(len(header))]
    for line in (header, *table):
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    for e in engines:
        s = results[e]["send"]
        print(
            f"{NAMES[e]} send: preflight {s['preflight_s']:.1f} s, send loop "
            f"{s['send_loop_s']:.1f} s (database {s['database_s'] / s['send_loop_s']:.0%}), "
            f"{s['requests']:,} requests, at most {s['peak_in_flight']} at once, sender CPU "
            f"{s['cpu_s']:.1f} s, delivered once: {s['delivered_once']}"
        )
    summary: dict[str, Any] = {"ratios": ratios}
    if "send" in ratios:
        verdict = "met" if ratios["send"] <= GOAL_RATIO else "NOT met"
        print(f"send on PostgreSQL {ratios['send']:.2f}x SQLite: goal <= {GOAL_RATIO}x {verdict}")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.2, help="stand-in answer delay (s)")
    parser.add_argument("--jitter", type=float, default=0.2, help="plus up to this (s)")
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    for step in ("import", "send"):
        parser.add_argument(f"--child-{step}", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        child_import(args.child_import)
        return 0
    if args.child_send:
        child_send(args.child_send)
        return 0

    from tests._postgres import running_server

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        if "sqlite" in args.engines:
            results["sqlite"] = run_engine("sqlite", Path(tmp), args, None, None)
        if "postgresql" in args.engines:
            print("PostgreSQL: starting a cluster (fsync on) ...", file=sys.stderr, flush=True)
            with running_server(durable=True) as server, server.fresh_database() as url:
                pid = server.postmaster_pid()
                results["postgresql"] = run_engine("postgresql", Path(tmp), args, url, pid)
    summary = report(results, args)
    if args.json:
        payload = {"summary": summary, "runs": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
