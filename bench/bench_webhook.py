"""Webhook benchmark: SendGrid's events ingested while a big send runs on the same database.

    python bench/bench_webhook.py                  # 100,000 events (posts of 1,000) during
                                                   # a 100,000-recipient send
    python bench/bench_webhook.py --quick          # 10,000 and 10,000, in under a minute
    python bench/bench_webhook.py --json bench/results/webhook.json

One list is imported (not timed) and copied twice. The first copy is sent alone: the
sample issue to every subscriber through the SendGrid stand-in (its own process, every
request validated against SendGrid's OpenAPI description), as `newsletter send sample
--yes --no-sync` does, in a child process. The second copy is sent the same way while
`newsletter serve`'s application runs under uvicorn in another process and this one posts
the events to /webhooks/sendgrid, signed with an ECDSA P-256 key as SendGrid signs them,
from a few threads at once (SendGrid posts concurrently). The events are those a send
makes (processed, delivered, open, click, some bounces, spam reports and unsubscribes,
every 50th one posted twice, as SendGrid repeats events). A post answered 503 (the
database busy for 10 s) is posted again, as SendGrid would.

Reported: events/s over the ingest, the send's time alone and with the ingest (ratio),
and the loss checks: events stored == distinct events posted; every recipient of each
send delivered exactly once, and every subscriber still active at the end among them.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.bench_send import API_KEY, ISSUE, SECRET, make_workspace  # noqa: E402

POST_SIZE = 1000
MAX_TRIES = 30  # posts answered 503 (busy) are posted again, up to this many times
REPEAT_EVERY = 50  # one event in 50 is posted twice
CHANGING_EVERY = 300  # one event in 300 is a bounce, spam report or unsubscribe


def serve_child(workspace: Path, port_file: Path) -> None:
    """`newsletter serve`'s application for `workspace` on 127.0.0.1, port written to a file."""
    import uvicorn

    from newsletter.config import load_settings
    from newsletter.web.app import create_app

    application = create_app(load_settings(workspace), extra_hosts=("127.0.0.1",))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port_file.write_text(str(sock.getsockname()[1]), encoding="ascii")
    config = uvicorn.Config(
        application, access_log=False, lifespan="off", log_level="warning", server_header=False
    )
    uvicorn.Server(config).run(sockets=[sock])


def events_for(recipients: int, count: int) -> list[dict[str, Any]]:
    """`count` events for the list's addresses, as SendGrid reports a send, repeats included."""
    kinds = ("processed", "delivered", "open", "click")
    changing = ("bounce", "spamreport", "unsubscribe")
    events: list[dict[str, Any]] = []
    for n in itertools.count():
        if len(events) >= count:
            break
        if n and n % REPEAT_EVERY == 0:
            events.append(events[-REPEAT_EVERY // 2])
            continue
        i = (n * 7919) % recipients  # spread over the list, not in send order
        # Offset from the repeats (every 50th), or every changing event would be a repeat.
        changes = n % CHANGING_EVERY == 7
        kind = changing[(n // CHANGING_EVERY) % 3] if changes else kinds[n % 4]
        event: dict[str, Any] = {
            "email": f"reader{i:07d}@example.org",
            "timestamp": 1_765_000_000 + n,
            "event": kind,
            "sg_event_id": base64.urlsafe_b64encode(n.to_bytes(8, "big")).decode(),
            "sg_message_id": f"m{i // 1000}.filter0001.{i}",
            "smtp-id": f"<{i}@example.org>",
            "issue": ISSUE,
        }
        if kind == "click":
            event["url"] = f"https://example.org/story/{n % 11}?utm_source=newsletter"
        if kind == "open":
            event["sg_machine_open"] = n % 8 == 2
        if kind == "bounce":
            event.update(type="bounce", reason="550 5.1.1 unknown user", status="5.1.1")
        events.append(event)
    return events


class Poster:
    """Posts events to the webhook as SendGrid does: signed, in bodies of POST_SIZE."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self.url = ""
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.retries = 0
        self.stored = 0
        self._lock = threading.Lock()

    @property
    def public_key(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        der = self.key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        return base64.b64encode(der).decode("ascii")

    def post(self, client: Any, events: list[dict[str, Any]]) -> None:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        body = json.dumps(events).encode("utf-8")
        for _ in range(MAX_TRIES):
            stamp = str(int(time.time()))
            signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
            headers = {
                "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
                "Content-Type": "application/json",
            }
            answer = client.post(self.url, content=body, headers=headers, timeout=120)
            if answer.status_code == 503:
                with self._lock:
                    self.retries += 1
                time.sleep(1)
                continue
            if answer.status_code != 200:
                raise RuntimeError(f"the webhook answered {answer.status_code}: {answer.text}")
            with self._lock:
                self.stored += answer.json()["stored"]
            return
        raise RuntimeError(f"the webhook answered 503 {MAX_TRIES} times in a row")


def posts(events: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(events), POST_SIZE):
        yield events[start : start + POST_SIZE]


def ingest(poster: Poster, events: list[dict[str, Any]], threads: int) -> float:
    """Post every event from `threads` threads; return the seconds it took."""
    import httpx

    local = threading.local()

    def one(chunk: list[dict[str, Any]]) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(trust_env=False)
        poster.post(local.client, chunk)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, posts(events)))
    return time.perf_counter() - started


def write_env(workspace: Path, stub_url: str, webhook_key: str = "") -> None:
    lines = [
        f"SENDGRID_API_KEY={API_KEY}",
        f"SENDGRID_API_HOST={stub_url}",
        f"NEWSLETTER_UNSUBSCRIBE_SECRET={SECRET}",
    ]
    if webhook_key:
        lines.append(f"SENDGRID_WEBHOOK_PUBLIC_KEY={webhook_key}")
    (workspace / ".env").write_text("\n".join(lines) + "\n", encoding="utf-8")


def start_send(workspace: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    command = [sys.executable, str(REPO / "bench" / "bench_send.py"), "--child", str(workspace)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)


def finish_send(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the send exited with {process.returncode}")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def send_checks(workspace: Path, deliveries: dict[str, int]) -> dict[str, Any]:
    """Every recipient the ledger says was sent got it exactly once; no active one missed."""
    conn = sqlite3.connect(workspace / "newsletter.db")
    try:
        sent = {
            str(key)
            for (key,) in conn.execute(
                "SELECT l.email_key FROM ledger l JOIN batches b ON b.id = l.batch_id "
                "WHERE l.state = 'batched' AND b.state = 'sent'"
            )
        }
        active = {
            str(key)
            for (key,) in conn.execute("SELECT email_key FROM subscribers WHERE status = 'active'")
        }
        (inactive,) = conn.execute(
            "SELECT count(*) FROM subscribers WHERE status != 'active'"
        ).fetchone()
    finally:
        conn.close()
    return {
        "delivered": len(deliveries),
        "delivered_once": set(deliveries.values()) <= {1} and set(deliveries) == sent,
        "active_missed": len(active - set(deliveries)),
        "inactive_at_end": int(inactive),
    }


def stored_events(workspace: Path) -> int:
    conn = sqlite3.connect(workspace / "newsletter.db")
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def wait_for_first_batch(workspace: Path, process: subprocess.Popen[str]) -> None:
    """Until the send has claimed its first batch, so that the ingest runs during the send."""
    conn = sqlite3.connect(workspace / "newsletter.db", timeout=30)
    try:
        while process.poll() is None:
            if conn.execute("SELECT count(*) FROM batches").fetchone()[0]:
                return
            time.sleep(0.02)
    finally:
        conn.close()


def wait_for_port(port_file: Path, process: subprocess.Popen[bytes]) -> int:
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    return int(port_file.read_text())


def run(recipients: int, count: int, threads: int, directory: Path) -> dict[str, Any]:
    from tests.sendgrid_stub import StubProcess

    print(f"importing {recipients:,} subscribers (not timed) ...", file=sys.stderr, flush=True)
    base = make_workspace(directory / "base", recipients)
    alone, together = directory / "alone", directory / "together"
    shutil.copytree(base, alone)
    shutil.copytree(base, together)
    events = events_for(recipients, count)
    distinct = len({json.dumps(e, sort_keys=True) for e in events})
    result: dict[str, Any] = {"recipients": recipients, "events_posted": len(events)}

    with StubProcess(
        API_KEY, port_file=directory / "stub1.port", extra_args=["--no-record-bodies"]
    ) as stub:
        write_env(alone, stub.url)
        print("send alone ...", file=sys.stderr, flush=True)
        result["alone"] = finish_send(start_send(alone))
        result["alone"].update(send_checks(alone, stub.deliveries(issue=ISSUE)))

    with StubProcess(
        API_KEY, port_file=directory / "stub2.port", extra_args=["--no-record-bodies"]
    ) as stub:
        # The key is in .env before the server starts: it reads the settings once.
        poster = Poster()
        write_env(together, stub.url, poster.public_key)
        port_file = directory / "web.port"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(together), "--port-file", str(port_file)],
            stdin=subprocess.DEVNULL,
        )
        try:
            port = wait_for_port(port_file, server)
            poster.url = f"http://127.0.0.1:{port}/webhooks/sendgrid"
            print(f"send with {len(events):,} events posted ...", file=sys.stderr, flush=True)
            sending = start_send(together)
            try:
                wait_for_first_batch(together, sending)
                ingest_s = ingest(poster, events, threads)
            except BaseException:
                sending.kill()
                raise
            result["send_running_after_ingest"] = sending.poll() is None
            result["together"] = finish_send(sending)
        finally:
            server.terminate()
            server.wait(timeout=30)
        result["together"].update(send_checks(together, stub.deliveries(issue=ISSUE)))

    result.update(
        ingest_s=ingest_s,
        events_per_s=len(events) / ingest_s,
        events_distinct=distinct,
        events_stored=stored_events(together),
        stored_reported=poster.stored,
        retries_503=poster.retries,
        send_ratio=result["together"]["wall_s"] / result["alone"]["wall_s"],
    )
    return result


def report(r: dict[str, Any]) -> None:
    alone, together = r["alone"], r["together"]
    print(
        f"ingest: {r['events_posted']:,} events in {r['events_posted'] // POST_SIZE:,} posts in "
        f"{r['ingest_s']:.1f} s = {r['events_per_s']:,.0f} events/s "
        f"({r['retries_503']} posts answered 503 and posted again)"
    )
    print(
        f"send of {r['recipients']:,}: alone {alone['wall_s']:.1f} s, with the ingest "
        f"{together['wall_s']:.1f} s (ratio {r['send_ratio']:.2f}); the ingest started at the "
        f"send's first batch and ended "
        + ("before the send did" if r["send_running_after_ingest"] else "after the send")
    )
    ok_events = r["events_stored"] == r["events_distinct"] == r["stored_reported"]
    print(
        f"events: {r['events_distinct']:,} distinct posted, {r['events_stored']:,} stored "
        f"-> {'OK' if ok_events else 'LOST OR DOUBLED'}"
    )
    for name, s in (("alone", alone), ("with ingest", together)):
        ok = s["delivered_once"] and s["active_missed"] == 0 and s["failed"] == s["unknown"] == 0
        print(
            f"send {name}: {s['sent']:,} sent, {s['delivered']:,} delivered, each once: "
            f"{s['delivered_once']}, active subscribers missed: {s['active_missed']} "
            f"-> {'OK' if ok else 'LOSS'}; {s['inactive_at_end']:,} made inactive by events, "
            f"{s['recipients'] - s['sent']:,} skipped as no longer active at their batch's claim"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2, help="concurrent posts (default 2)")
    parser.add_argument("--quick", action="store_true", help="10,000 recipients and events")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_child(args.serve, args.port_file)
        return
    if args.quick:
        args.recipients, args.events = 10_000, 10_000
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        result = run(args.recipients, args.events, args.threads, Path(tmp))
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
