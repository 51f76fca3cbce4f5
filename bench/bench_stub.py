"""SendGrid stub benchmark: what the stub costs per mail/send request.

    python bench/bench_stub.py [--runs 200] [--http-requests 100] [--skip-memory]

Prints, for one realistic 1000-personalization body, the cost of each server-side step as
a ratio against ``json.loads`` of the same body (the floor any JSON server pays), then the
HTTP round trip through the official client, then the memory that 1,000,000 delivered
recipients take with ``record_bodies=False``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sendgrid import SendGridAPIClient  # noqa: E402

from tests.sendgrid_stub import (  # noqa: E402
    MAIL_SEND,
    TEST_API_KEY,
    SendGridStub,
    mail_send_validator,
    recipients_by_issue,
    validate_mail_send,
)

PERSONALIZATIONS = 1000
HTML = (
    "<table><tr><td><h2>Story</h2><p>"
    + "Lorem ipsum dolor sit amet. " * 20
    + "</p></td></tr></table>"
)


def newsletter_body(first: int = 0, issue: str = "2024-05") -> dict[str, Any]:
    """One batch as the sender would build it: per-reader unsubscribe links and ids."""
    return {
        "from": {"email": "editor@example.com", "name": "The Editor"},
        "subject": "The May issue",
        "content": [
            {"type": "text/plain", "value": "Story\n" * 200},
            {"type": "text/html", "value": HTML * 20},
        ],
        "headers": {"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        "categories": ["newsletter"],
        "custom_args": {"issue": issue},
        "asm": {"group_id": 42},
        "personalizations": [
            {
                "to": [{"email": f"reader{n}@example.com", "name": f"Reader {n}"}],
                "headers": {"List-Unsubscribe": f"<https://example.com/u/{n}>"},
                "substitutions": {"-unsubscribe-": f"https://example.com/u/{n}"},
                "custom_args": {"recipient": str(n)},
            }
            for n in range(first, first + PERSONALIZATIONS)
        ],
    }


def per_call(function: Callable[[], object], runs: int) -> float:
    """Median seconds per call over ``runs`` calls, after one warm-up call."""
    function()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def report(label: str, seconds: float, baseline: float) -> None:
    print(f"  {label:<44} {seconds * 1000:8.3f} ms  {seconds / baseline:6.2f}x json.loads")


def server_side(runs: int) -> None:
    body = newsletter_body()
    raw = json.dumps(body).encode()
    headers = {"authorization": f"Bearer {TEST_API_KEY}", "content-length": str(len(raw))}
    validator = mail_send_validator()
    print(f"one body: {PERSONALIZATIONS} personalizations, {len(raw) / 1024:.0f} KiB of JSON")
    print("server-side cost per request (median):")
    loads = per_call(lambda: json.loads(raw), runs)
    report("json.loads (baseline)", loads, loads)
    report(
        "schema check (fastjsonschema, refs inlined)",
        per_call(lambda: validator(body), runs),
        loads,
    )
    report(
        "full validation (schema + documented limits)",
        per_call(lambda: validate_mail_send(body), runs),
        loads,
    )
    report("recipient count by issue", per_call(lambda: recipients_by_issue(body), runs), loads)
    stub = SendGridStub(record_bodies=False)
    dispatch = per_call(lambda: stub.dispatch("POST", MAIL_SEND, headers, lambda: raw), runs)
    report("stub.dispatch in-process (parse..record)", dispatch, loads)


def http_round_trip(requests: int) -> None:
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
    print(f"HTTP round trip through SendGridAPIClient, median of {requests}:")
    for personalizations in (1, PERSONALIZATIONS):
        body = newsletter_body()
        body["personalizations"] = body["personalizations"][:personalizations]
        with SendGridStub(record_bodies=False) as stub:
            client = SendGridAPIClient(TEST_API_KEY, host=stub.url)
            send = client.client.mail.send.post
            encode = per_call(lambda body=body: json.dumps(body), requests)  # type: ignore[misc]
            total = per_call(lambda body=body, send=send: send(request_body=body), requests)  # type: ignore[misc]
        print(
            f"  {personalizations:>4} personalization(s): {total * 1000:7.2f} ms per request"
            f" (of which the client's json.dumps {encode * 1000:.2f} ms)"
        )


def resident_bytes() -> int:
    """This process's resident set size (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_for_a_million() -> None:
    # tracemalloc would be exact but slows json.loads a hundredfold; RSS is close enough.
    stub = SendGridStub(record_bodies=False)
    raw = json.dumps(newsletter_body()).encode()
    headers = {"authorization": f"Bearer {TEST_API_KEY}"}
    batches = 1_000_000 // PERSONALIZATIONS
    gc.collect()
    before = resident_bytes()
    start = time.perf_counter()
    for batch in range(batches):
        fresh = raw.replace(b"reader", f"r{batch}x".encode())  # new addresses in every batch
        stub.dispatch("POST", MAIL_SEND, headers, lambda fresh=fresh: fresh)  # type: ignore[misc]
    elapsed = time.perf_counter() - start
    gc.collect()
    held = resident_bytes() - before
    print(
        f"1,000,000 recipients, record_bodies=False: {len(stub.deliveries()):,} addresses"
        f" counted; resident memory grew {held / 2**20:.0f} MiB ({held / 1e6:.0f} bytes per"
        f" recipient); {elapsed:.1f} s for {batches} in-process dispatches"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--http-requests", type=int, default=100)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    server_side(args.runs)
    http_round_trip(args.http_requests)
    if not args.skip_memory:
        memory_for_a_million()


if __name__ == "__main__":
    main()
