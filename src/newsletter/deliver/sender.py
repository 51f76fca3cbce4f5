"""Sending an issue: preflight, suppression sync, the ledger loop, faults, the summary.

`Sender` is used in two steps so that the CLI can ask before anything is sent::

    with Sender(settings, "2026-12-01", SendOptions()) as sender:
        preflight = sender.preflight()      # build, checks, sync, counts: nothing sent
        summary = sender.send(progress)     # the ledger loop

The ledger protocol: a batch is claimed (`sending`) before its request goes out and
marked after the answer; a request that provably did not go out is released, one whose
answer was lost is `unknown` and is not sent again unless the editor asks.
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Self
from urllib.parse import urlsplit

from newsletter.audience.unsubscribe import SECRET_ENV, UnsubscribeLinks
from newsletter.deliver.backends import Backend, BatchResult, Outcome, create_backend, resolve_name
from newsletter.deliver.message import (
    MAX_PERSONALIZATIONS,
    REQUEST_BYTES_BUDGET,
    Message,
    SendGridRequest,
    message_for,
    validate_body,
)
from newsletter.errors import (
    ChecksFailed,
    ConfigError,
    DeliveryError,
    LockBusy,
    NewsletterError,
    UserError,
)

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.build.output import Build
    from newsletter.config import Settings
    from newsletter.deliver.ledger import Ledger, Recipient
    from newsletter.deliver.suppressions import SyncReport

LOCK_FILE = ".newsletter-send.lock"
GMAIL_CLIP_BYTES = 102_000
# SendGrid's click tracking swaps every link for https://<id>.ct.sendgrid.net/ls/click?upn=...
# which runs to about 250-300 characters; the open-tracking pixel adds an <img> tag.
TRACKED_LINK_CHARS = 300
OPEN_PIXEL_BYTES = 250
# A connection that keeps losing answers is not worth feeding more batches into.
MAX_UNKNOWN_IN_A_ROW = 3
KEPT_ADDRESSES = 1000
_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


@dataclass(frozen=True)
class SendOptions:
    backend: str | None = None
    resend: bool = False
    resend_unknown: bool = False
    sync: bool = True
    # A scheduled hand-over: SendGrid holds every request until send_at, under batch_id.
    send_at: int | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class Progress:
    done: int
    total: int
    note: str | None = None


ProgressCallback = Callable[[Progress], None]


@dataclass
class Preflight:
    """What the editor confirms: the message, where it goes, and to how many."""

    slug: str
    subject: str
    sender: str
    backend: str
    recipients: int
    active: int
    already_sent: int
    unknown_held: int  # unknown rows left alone (resent only with --resend-unknown)
    recovered: int  # rows an interrupted run left `sending`, now `unknown`
    sync: SyncReport | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Summary:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    unknown: int = 0
    requests: int = 0
    unit: str = "request"
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    unknown_addresses: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (address, error)
    stopped: NewsletterError | None = None  # why the run ended early, if it did

    @property
    def ok(self) -> bool:
        return self.stopped is None and not self.failed and not self.unknown


@dataclass
class DryRun:
    backend: str
    recipients: int
    active: int
    already_sent: int
    batches: int
    largest_request_bytes: int
    most_personalizations: int
    worst_html_bytes: int
    worst_case_bytes: int  # the longest personalised HTML plus click-tracking room
    tracked_links: int
    worst_recipient: str | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def refuse_placeholders(settings: Settings, build: Build, backend_name: str) -> None:
    """example.org links must not reach subscribers; the outbox is a rehearsal, so it may."""
    from newsletter.issue.placeholders import is_placeholder

    if backend_name == "outbox" or settings.file.delivery.allow_placeholders:
        return
    found = []
    articles = sum(is_placeholder(article.url) for article in build.issue.articles())
    if articles:
        found.append(f"{articles} article link(s) in issue.yaml")
    newsletter = settings.file.newsletter
    for name in ("unsubscribe_url", "web_base_url"):
        if _is_example_address(getattr(newsletter, name)):
            found.append(f"[newsletter] {name} in newsletter.toml")
    if found:
        raise ChecksFailed(
            f"issue {build.slug!r} still has example placeholders: {', '.join(found)}",
            fix="replace them with real addresses, or rehearse with `--backend outbox`; "
            "nothing was sent",
        )


def _is_example_address(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    reserved = ("example.org", "example.com", "example.net")  # RFC 2606
    return (
        host in reserved
        or host.endswith(tuple(f".{name}" for name in reserved))
        or (host.endswith((".example", ".invalid", ".test", ".localhost")))
    )


def build_for_sending(settings: Settings, slug: str) -> Build:
    """Build the issue now (the build on disk is replaced); refuse one that fails its checks."""
    from newsletter.build.output import make_build, write_build

    build = make_build(settings, slug)
    write_build(settings, build)
    if not build.ok:
        errors = [f for f in build.findings if f.level == "error"]
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ChecksFailed(
            f"issue {slug!r} fails its checks: [{first.code}] {first.message}{more}",
            fix=f"fix them and see `newsletter check {slug}`; nothing was sent",
        )
    return build


def unsubscribe_links(
    settings: Settings, backend: str, warnings: list[str], *, rehearsal: bool = False
) -> UnsubscribeLinks:
    """The list's link signer; without a secret only the outbox (or a rehearsal) may go on."""
    newsletter = settings.file.newsletter
    secret = settings.secrets.unsubscribe_secret
    if secret is not None:
        return UnsubscribeLinks(
            newsletter.unsubscribe_url, newsletter.list_name, secret.get_secret_value()
        )
    # A setting, not the issue: the cron run stops at the first issue instead of every one.
    missing = ConfigError(
        f"{SECRET_ENV} is not set: unsubscribe links cannot be signed",
        where=".env",
        fix="set it to a long random string, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
    )
    if backend != "outbox" and not rehearsal:
        raise missing
    warnings.append(
        missing.line()
        if backend != "outbox"
        else f"{SECRET_ENV} is not set: the outbox's unsubscribe links are signed with a "
        "throwaway key (set it in .env before a real send)"
    )
    return UnsubscribeLinks(newsletter.unsubscribe_url, newsletter.list_name, secrets.token_hex(32))


class Sender:
    """One send of one issue, holding the workspace send lock from start to end."""

    def __init__(
        self,
        settings: Settings,
        slug: str,
        options: SendOptions | None = None,
        *,
        backend: Backend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.slug = slug
        self.options = options or SendOptions()
        self.backend_name = (
            backend.name if backend else resolve_name(settings, self.options.backend)
        )
        held = self.options.send_at is not None or self.options.batch_id is not None
        if held and self.backend_name != "sendgrid":
            raise UserError(
                f"only SendGrid can hold a send until its time, not {self.backend_name}",
                fix="schedule without --via-sendgrid, or use the sendgrid backend",
            )
        self._backend = backend
        self._clock = clock
        self._lock: BaseFileLock | None = None
        self._conn: sqlite3.Connection | None = None
        self._message: Message | None = None
        self._notes: list[str] = []
        self._rehearsal = False
        self.warnings: list[str] = []

    # -- lifecycle

    def __enter__(self) -> Self:
        from filelock import FileLock, Timeout

        from newsletter.db import open_database

        self._lock = FileLock(self.settings.workspace / LOCK_FILE)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise LockBusy(
                "another send is running in this workspace",
                where=self.settings.workspace / LOCK_FILE,
                fix="wait for it to finish; the lock goes when that process ends",
            ) from None
        try:
            self._conn = open_database(self.settings.database_path)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._backend is not None:
            self._backend.close()
        if self._conn is not None:
            self._conn.close()
        if self._lock is not None:
            self._lock.release()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("use Sender as a context manager")
        return self._conn

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = create_backend(self.backend_name, self.settings, self._notes.append)
        return self._backend

    @property
    def message(self) -> Message:
        if self._message is None:
            build = build_for_sending(self.settings, self.slug)
            self.warnings += [f"[{f.code}] {f.message}" for f in build.findings]
            refuse_placeholders(self.settings, build, self.backend_name)
            links = unsubscribe_links(
                self.settings, self.backend_name, self.warnings, rehearsal=self._rehearsal
            )
            message = message_for(self.settings, build, links)
            if self.options.send_at is not None or self.options.batch_id is not None:
                message = replace(
                    message, send_at=self.options.send_at, batch_id=self.options.batch_id
                )
            self._message = message
        return self._message

    # -- before sending

    def preflight(self) -> Preflight:
        """Build, check, sync and count; what is committed is only what is already true."""
        from newsletter.audience.store import SubscriberStore
        from newsletter.deliver.ledger import SENT, UNKNOWN, Ledger

        ledger = Ledger(self.conn)
        recovered = ledger.recover(self.slug)
        self._refuse_if_finished(ledger)
        message = self.message
        backend = self.backend
        sync = self.options.sync and self.settings.file.delivery.sync_suppressions
        report = self._sync() if sync and self.backend_name == "sendgrid" else None
        with _rolled_back(self.conn):
            rehearsal = Ledger(self.conn)
            self._requeue(rehearsal)
            counts = rehearsal.counts(self.slug)
        before = ledger.counts(self.slug)
        return Preflight(
            slug=self.slug,
            subject=message.subject,
            sender=message.sender.formatted(),
            backend=backend.describe(),
            recipients=counts["pending"],
            active=SubscriberStore(self.conn).stats()["active"],
            already_sent=before[SENT] if not self.options.resend else 0,
            unknown_held=counts[UNKNOWN],
            recovered=recovered,
            sync=report,
            warnings=self.warnings,
        )

    def _refuse_if_finished(self, ledger: Ledger) -> None:
        from newsletter.deliver.ledger import SENT

        # was_sent: a run that found nobody to send to leaves a ledger that is "complete".
        if ledger.is_complete(self.slug) and ledger.was_sent(self.slug) and not self.options.resend:
            sent = ledger.counts(self.slug)[SENT]
            raise UserError(
                f"issue {self.slug!r} was already sent to {sent:,} recipient"
                f"{'' if sent == 1 else 's'}",
                fix=f"nothing to do; `newsletter send {self.slug} --resend` sends it to "
                "every active subscriber again",
            )

    def _sync(self) -> SyncReport:
        from newsletter.deliver.suppressions import client_for, sync_suppressions

        return sync_suppressions(
            self.conn, client_for(self.settings), self.settings.file.delivery.asm_group_id
        )

    def _requeue(self, ledger: Ledger) -> None:
        from newsletter.deliver.ledger import FAILED, SENT, SKIPPED, UNKNOWN

        states = {FAILED}  # refused requests: never delivered, so always tried again
        if self.options.resend:
            states |= {SENT, UNKNOWN, SKIPPED}
        elif self.options.resend_unknown:
            states.add(UNKNOWN)
        ledger.requeue(self.slug, states)
        ledger.prepare(self.slug)

    # -- sending

    def send(self, progress: ProgressCallback | None = None) -> Summary:
        from newsletter.deliver.ledger import PENDING, SKIPPED, Ledger

        report = progress or (lambda _progress: None)
        message = self.message
        backend = self.backend
        ledger = Ledger(self.conn)
        summary = Summary(unit=backend.unit)
        database = 0.0
        started = self._clock()

        @contextmanager
        def timed() -> Iterator[None]:
            nonlocal database
            mark = time.perf_counter()
            try:
                yield
            finally:
                database += time.perf_counter() - mark

        with timed():
            ledger.recover(self.slug)
            self._refuse_if_finished(ledger)
            self._requeue(ledger)
            counts = ledger.counts(self.slug)
        total, skipped_before = counts[PENDING], counts[SKIPPED]
        requests_before = backend.requests
        sizes: list[int] = []  # batch sizes to claim next, after a split
        in_a_row = 0
        done = 0
        report(Progress(0, total))
        while True:
            size = sizes.pop(0) if sizes else backend.max_batch_size
            with timed():
                batch = ledger.claim_batch(self.slug, size)
            if batch is None:
                break
            recipients = batch.recipients
            try:
                result = backend.send_batch(message, recipients)
            except NewsletterError as error:  # nothing of the batch went out
                with timed():
                    ledger.release(batch.id)
                summary.stopped = error
                break
            except KeyboardInterrupt:
                with timed():
                    ledger.mark_unknown(batch.id, "interrupted while sending")
                summary.unknown += len(recipients)
                _keep(summary.unknown_addresses, (r.email for r in recipients))
                summary.stopped = DeliveryError(
                    "interrupted",
                    fix=f"run `newsletter send {self.slug}` again to send the rest",
                )
                break
            with timed():
                split = self._record(ledger, batch.id, recipients, result, summary)
            if split:
                sizes[:0] = split
                continue
            done += len(recipients)
            in_a_row = in_a_row + 1 if result.outcome == Outcome.UNKNOWN else 0
            report(Progress(done, total, self._take_note()))
            if in_a_row >= MAX_UNKNOWN_IN_A_ROW:
                summary.stopped = DeliveryError(
                    f"{in_a_row} requests in a row lost their answer; stopped to avoid "
                    "leaving more recipients unknown",
                    fix="check the network, then run the same command again",
                )
                break
        with timed():
            summary.skipped = ledger.counts(self.slug)[SKIPPED] - skipped_before
        if summary.stopped is None:
            report(Progress(total, total))
        summary.requests = backend.requests - requests_before
        summary.seconds = self._clock() - started
        summary.timings = {"database": database, **backend.timings}
        return summary

    def _record(
        self,
        ledger: Ledger,
        batch_id: int,
        recipients: Sequence[Recipient],
        result: BatchResult,
        summary: Summary,
    ) -> list[int]:
        """Write the outcome; return the sizes to claim next when the batch must be split."""
        count = len(recipients)
        if result.outcome == Outcome.SENT:
            ledger.mark_sent(batch_id, result.message_id)
            summary.sent += count
        elif result.outcome == Outcome.UNKNOWN:
            ledger.mark_unknown(batch_id, result.error or "answer lost")
            summary.unknown += count
            _keep(summary.unknown_addresses, (r.email for r in recipients))
        elif result.outcome == Outcome.TOO_LARGE and count > 1:
            ledger.release(batch_id)
            self._notes.append(f"request too large; splitting {count:,} recipients in two")
            return [count // 2, count - count // 2]
        else:
            error = result.error or "refused"
            ledger.mark_failed(batch_id, error)
            summary.failed += count
            if len(summary.failures) < KEPT_ADDRESSES:
                summary.failures.extend((r.email, error) for r in recipients)
        return []

    def _take_note(self) -> str | None:
        if not self._notes:
            return None
        note = self._notes[-1]
        self._notes.clear()
        return note

    # -- the rehearsal

    def dry_run(self) -> DryRun:
        """Everything but the network: every request built and checked; nothing written."""
        from newsletter.audience.store import SubscriberStore
        from newsletter.deliver.ledger import PENDING, SENT, Ledger

        problems: list[str] = []
        self._rehearsal = True
        try:
            self.backend  # noqa: B018 - creating it checks its settings (key, host)
        except NewsletterError as error:
            problems.append(error.line())
        message = self.message
        builder = SendGridRequest(message)
        batch_size = (
            self._backend.max_batch_size
            if self._backend is not None
            else min(self.settings.file.delivery.batch_size, MAX_PERSONALIZATIONS)
        )
        html_counts = {tag: message.html.count(tag) for tag in _tags()}
        ledger = Ledger(self.conn)
        already = ledger.counts(self.slug)[SENT]
        if ledger.is_complete(self.slug) and ledger.was_sent(self.slug) and not self.options.resend:
            problems.append(
                f"issue {self.slug!r} was already sent ({already:,}); a send would need --resend"
            )
        report = DryRun(
            backend=self.backend_name,
            recipients=0,
            active=SubscriberStore(self.conn).stats()["active"],
            already_sent=0 if self.options.resend else already,
            batches=0,
            largest_request_bytes=0,
            most_personalizations=0,
            worst_html_bytes=0,
            worst_case_bytes=0,
            tracked_links=0,
            worst_recipient=None,
            problems=problems,
            warnings=self.warnings,
        )
        worst_delta = -1
        worst: Recipient | None = None
        with _rolled_back(self.conn):
            rehearsal = Ledger(self.conn)
            rehearsal.recover(self.slug)
            self._requeue(rehearsal)
            pending = rehearsal.counts(self.slug)[PENDING]
            while (batch := rehearsal.claim_batch(self.slug, batch_size)) is not None:
                body = builder.body(batch.recipients)
                size = len(_json(body))
                report.batches += 1
                report.recipients += len(batch.recipients)
                report.largest_request_bytes = max(report.largest_request_bytes, size)
                report.most_personalizations = max(
                    report.most_personalizations, len(batch.recipients)
                )
                if size > REQUEST_BYTES_BUDGET:
                    problems.append(f"request {report.batches} would be {size:,} bytes")
                for problem in validate_body(body):
                    problems.append(f"request {report.batches}: {problem}")
                for recipient, personalization in zip(
                    batch.recipients, body["personalizations"], strict=True
                ):
                    substitutions = personalization["substitutions"]
                    delta = sum(
                        n * (len(substitutions.get(tag, tag).encode("utf-8")) - len(tag))
                        for tag, n in html_counts.items()
                    )
                    if delta > worst_delta:
                        worst_delta, worst = delta, recipient
            skipped = pending - report.recipients
        if report.recipients > report.active:
            problems.append(
                f"{report.recipients:,} recipients but only {report.active:,} active subscribers"
            )
        if report.recipients + skipped != pending:
            problems.append(f"{pending:,} pending rows but {report.recipients:,} claimed")
        if worst is not None:
            self._worst_case(message, worst, report)
        return report

    def _worst_case(self, message: Message, worst: Recipient, report: DryRun) -> None:
        finished = message.personalize(worst)
        for part, text in (("HTML", finished.html), ("text", finished.text)):
            left = _unfilled(text)
            if left:
                report.problems.append(f"merge tag(s) left in the {part} part: {', '.join(left)}")
        links = [
            html_lib.unescape(href)
            for href in _HREF.findall(finished.html)
            if href.startswith(("http://", "https://"))
        ]
        size = len(finished.html.encode("utf-8"))
        tracking = sum(max(0, TRACKED_LINK_CHARS - len(href)) for href in links)
        report.worst_recipient = worst.email
        report.worst_html_bytes = size
        report.tracked_links = len(links)
        report.worst_case_bytes = size + tracking + OPEN_PIXEL_BYTES
        if report.worst_case_bytes >= GMAIL_CLIP_BYTES:
            report.problems.append(
                f"the longest message ({worst.email}) would be about "
                f"{report.worst_case_bytes:,} bytes with click tracking; Gmail clips from "
                f"{GMAIL_CLIP_BYTES:,} — shorten the issue"
            )


def first_of_each(addresses: Sequence[str]) -> list[str]:
    """The addresses without repeats that differ only in case, as first written."""
    unique: dict[str, str] = {}
    for address in addresses:
        unique.setdefault(address.strip().lower(), address.strip())
    return list(unique.values())


def send_test(
    settings: Settings, slug: str, addresses: Sequence[str], backend_name: str | None = None
) -> tuple[Backend, BatchResult]:
    """The subscribers' message, marked [TEST], to `addresses`; the ledger is not touched."""
    from newsletter.audience.store import InvalidAddress, SubscriberStore, normalize_email
    from newsletter.db import open_database
    from newsletter.deliver.ledger import Recipient

    checked: list[str] = []
    for address in addresses:
        try:
            checked.append(normalize_email(address)[0])
        except InvalidAddress as exc:
            raise UserError(f"--test {address!r} is not an email address ({exc})") from None
    name = resolve_name(settings, backend_name)
    warnings: list[str] = []
    build = build_for_sending(settings, slug)
    message = message_for(settings, build, unsubscribe_links(settings, name, warnings)).as_test()
    conn = open_database(settings.database_path)
    try:
        store = SubscriberStore(conn)
        recipients = []
        for address in first_of_each(checked):
            known = store.get(address)
            recipients.append(
                Recipient(known.id, address, known.name, known.first_name, known.fields)
                if known is not None
                else Recipient(0, address, None, None, {})
            )
    finally:
        conn.close()
    backend = create_backend(name, settings)
    try:
        result = backend.send_batch(message, recipients)
    finally:
        backend.close()
    if result.outcome != Outcome.SENT:
        raise DeliveryError(
            f"the test send was not accepted ({result.outcome}): {result.error}",
            fix="see the error; nothing was recorded",
        )
    return backend, result


# --------------------------------------------------------------------------- helpers


@contextmanager
def _rolled_back(conn: sqlite3.Connection) -> Iterator[None]:
    """Run ledger calls for real inside one transaction, then undo them all."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")


def _keep(kept: list[str], addresses: Iterator[str]) -> None:
    for address in addresses:
        if len(kept) >= KEPT_ADDRESSES:
            return
        kept.append(address)


def _tags() -> list[str]:
    from newsletter.build.merge_tags import MERGE_TAGS

    return list(MERGE_TAGS.values())


def _unfilled(text: str) -> list[str]:
    from newsletter.build.merge_tags import unfilled

    return sorted(unfilled(text))


def _json(body: object) -> str:
    import json

    return json.dumps(body)
