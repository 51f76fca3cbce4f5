"""`send --dry-run`: every request built and checked as it would go out; nothing sent or kept.

The ledger work runs for real inside a transaction that is rolled back, so the batches
counted are the batches a send would claim.
"""

from __future__ import annotations

import html as html_lib
import json
import re
from dataclasses import dataclass, field
from itertools import chain
from typing import TYPE_CHECKING, Protocol

from newsletter.build.checks import GMAIL_CLIP_BYTES
from newsletter.db import rolled_back
from newsletter.deliver.backends.sendgrid.limits import MAX_PERSONALIZATIONS, REQUEST_BYTES_BUDGET
from newsletter.deliver.backends.sendgrid.request import SendGridRequest, validate_body
from newsletter.errors import NewsletterError
from newsletter.merge_tags import MERGE_TAGS, unfilled

if TYPE_CHECKING:
    from newsletter.db import Connection

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.deliver.backends import Backend
    from newsletter.deliver.ledger import Ledger, Recipient
    from newsletter.deliver.message import Message
    from newsletter.deliver.options import SendOptions

# SendGrid's click tracking swaps every link for https://<id>.ct.sendgrid.net/ls/click?upn=...
# which runs to about 250-300 characters; the open-tracking pixel adds an <img> tag.
TRACKED_LINK_CHARS = 300
OPEN_PIXEL_BYTES = 250
_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""", re.IGNORECASE)


class Rehearsed(Protocol):
    """What a dry run needs of the send it rehearses (a `Sender`)."""

    settings: Settings
    slug: str
    options: SendOptions
    backend_name: str
    rehearsal: bool
    warnings: list[str]

    @property
    def conn(self) -> Connection: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def backend_if_created(self) -> Backend | None: ...
    @property
    def message(self) -> Message: ...
    def rehearsals(self) -> list[str]: ...
    def requeue(self, ledger: Ledger, *, rows: int | None = None) -> None: ...


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


def rehearse(self: Rehearsed) -> DryRun:
    """Everything but the network: every request built and checked; nothing written."""
    from newsletter.audience.store import SubscriberStore
    from newsletter.deliver.ledger import PENDING, SENT, Ledger

    problems: list[str] = []
    self.rehearsal = True
    try:
        self.backend  # noqa: B018 - creating it checks its settings (key, host)
    except NewsletterError as error:
        problems.append(error.line())
    message = self.message
    builder = SendGridRequest(message)
    batch_size = (
        self.backend_if_created.max_batch_size
        if self.backend_if_created is not None
        else min(self.settings.file.delivery.batch_size, MAX_PERSONALIZATIONS)
    )
    html_counts = {tag: message.html.count(tag) for tag in _tags()}
    with rolled_back(self.conn):  # the ledger as a real send would see it
        ledger = Ledger(self.conn)
        ledger.forget_rehearsals(self.slug, self.rehearsals())
        already = ledger.counts(self.slug)[SENT]
        finished = ledger.is_complete(self.slug) and ledger.was_sent(self.slug)
    again = self.options.resend or self.options.new_subscribers
    if finished and not again:
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
    with rolled_back(self.conn):
        rehearsal = Ledger(self.conn)
        rehearsal.takes_chunks = False  # the rows a first send has not written are read
        rehearsal.recover(self.slug)
        self.requeue(rehearsal, rows=0)
        pending = rehearsal.counts(self.slug)[PENDING]
        claimed = iter(lambda: rehearsal.claim_batch(self.slug, batch_size), None)
        batches = chain(
            (batch.recipients for batch in claimed),
            rehearsal.untaken_batches(self.slug, batch_size),
        )
        for recipients in batches:
            body = builder.body(recipients)
            size = len(_json(body))
            report.batches += 1
            report.recipients += len(recipients)
            report.largest_request_bytes = max(report.largest_request_bytes, size)
            report.most_personalizations = max(report.most_personalizations, len(recipients))
            if size > REQUEST_BYTES_BUDGET:
                problems.append(f"request {report.batches} would be {size:,} bytes")
            for problem in validate_body(body):
                problems.append(f"request {report.batches}: {problem}")
            for recipient, personalization in zip(
                recipients, body["personalizations"], strict=True
            ):
                substitutions = personalization["substitutions"]
                delta = sum(
                    n * (len(substitutions.get(tag, tag).encode("utf-8")) - len(tag))
                    for tag, n in html_counts.items()
                )
                if delta > worst_delta:
                    worst_delta, worst = delta, recipient
        skipped = rehearsal.skipped
    if report.recipients > report.active:
        problems.append(
            f"{report.recipients:,} recipients but only {report.active:,} active subscribers"
        )
    if report.recipients + skipped != pending:
        problems.append(f"{pending:,} pending rows but {report.recipients:,} claimed")
    if worst is not None:
        _worst_case(message, worst, report)
    return report


def _worst_case(message: Message, worst: Recipient, report: DryRun) -> None:
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


def _tags() -> list[str]:
    return list(MERGE_TAGS.values())


def _unfilled(text: str) -> list[str]:
    return sorted(unfilled(text))


def _json(body: object) -> str:
    return json.dumps(body)
