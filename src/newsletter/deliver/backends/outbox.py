"""The outbox backend: each recipient's message as an .eml file in outbox/<slug>/.

For rehearsals and for the quick start, which has no credentials. Files are named after
the address and written atomically, so a rerun replaces a file instead of adding one.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from newsletter.audience.addresses import address_key
from newsletter.deliver.backends import BatchResult, Notify, Outcome
from newsletter.deliver.message import Message, RecipientLike, mime_message
from newsletter.errors import DeliveryError
from newsletter.files import atomic_write

if TYPE_CHECKING:
    from newsletter.config import Settings

TEST_FOLDER = "test"
_MAX_STEM = 180


def file_name(address: str) -> str:
    """A file name for an address: readable, injective, safe on every file system."""
    stem = quote(address_key(address), safe="@+-_")
    stem = "%2E" + stem[1:] if stem.startswith(".") else stem
    if len(stem) > _MAX_STEM:
        digest = hashlib.sha256(stem.encode()).hexdigest()[:16]
        stem = f"{stem[:_MAX_STEM]}-{digest}"
    return f"{stem}.eml"


class OutboxBackend:
    name = "outbox"
    unit = "file"

    def __init__(self, root: Path, *, batch_size: int = 1000, label: str | None = None) -> None:
        self.root = root
        self.label = label or str(root)
        self.max_batch_size = batch_size
        self.timings: dict[str, float] = {"build": 0.0, "io": 0.0}
        self.requests = 0

    def folder(self, message: Message) -> Path:
        folder = self.root / message.issue
        return folder / TEST_FOLDER if message.test else folder

    def describe(self) -> str:
        return f"outbox ({self.label}/)"

    def close(self) -> None:
        pass

    def send_batch(self, message: Message, recipients: Sequence[RecipientLike]) -> BatchResult:
        folder = self.folder(message)
        written = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for recipient in recipients:
                started = time.perf_counter()
                data = mime_message(message, recipient).as_bytes()
                self.timings["build"] += time.perf_counter() - started
                started = time.perf_counter()
                atomic_write(folder / file_name(recipient.email), data, sync=False, private=True)
                self.requests += 1
                written += 1
                self.timings["io"] += time.perf_counter() - started
        except OSError as exc:
            error = DeliveryError(
                f"cannot write the outbox ({exc.strerror or exc})",
                where=folder,
                fix="check the disk and the folder's permissions, then send again",
            )
            if not written:
                raise error from None
            # The files already written are delivered; the caller must not write them again.
            return BatchResult(
                Outcome.PARTIAL, error=error.line(), requests=written, delivered=written
            )
        return BatchResult(Outcome.SENT, requests=len(recipients))


def create(settings: Settings, notify: Notify) -> OutboxBackend:
    return OutboxBackend(
        settings.path("outbox"),
        batch_size=settings.file.delivery.batch_size,
        label=settings.file.paths.outbox,
    )
