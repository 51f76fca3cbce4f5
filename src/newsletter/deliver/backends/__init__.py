"""Delivery backends behind one interface, registered by name.

A backend takes a built `Message` and a batch of recipients and says what became of the
batch as a whole; the caller records that in the ledger. A backend never touches the
ledger, templates or issue files.

Outcomes, and what the ledger does with them:

- `SENT`: accepted by the service (`mark_sent`).
- `FAILED`: refused for good, e.g. SendGrid's 400 (`mark_failed`; a rerun tries again).
- `UNKNOWN`: the request may have been delivered but its answer was lost (`mark_unknown`).
- `TOO_LARGE`: refused for its size before anything was delivered; the caller splits it.
- `PARTIAL`: the first `delivered` recipients got it, the rest provably did not (a backend
  that delivers one by one and hit a fault, e.g. a full disk); the caller records each
  side and stops.

A backend raises `AuthError` when the credentials are refused and `DeliveryError` when it
gave up on a fault it could retry; in both cases nothing of the batch was delivered.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.deliver.message import Message, RecipientLike

AUTO = "auto"


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"
    TOO_LARGE = "too_large"
    PARTIAL = "partial"


@dataclass(frozen=True)
class BatchResult:
    outcome: Outcome
    message_id: str | None = None
    error: str | None = None
    requests: int = 1  # requests (or messages, or files) that went out, retries included
    delivered: int = 0  # PARTIAL only: how many of the batch's recipients, in order, got it


Notify = Callable[[str], None]


class Backend(Protocol):
    name: str
    unit: str  # what `BatchResult.requests` counts: "request", "message" or "file"
    max_batch_size: int
    requests: int  # requests (or messages, or files) sent so far, retries included
    # Seconds spent building payloads and talking to the service, for the summary.
    timings: dict[str, float]

    def send_batch(self, message: Message, recipients: Sequence[RecipientLike]) -> BatchResult:
        """Deliver one message to every recipient of the batch; see the module docstring."""
        ...

    def describe(self) -> str:
        """Where the messages go, for the confirmation screen (never a secret)."""
        ...

    def close(self) -> None: ...


class ConcurrentBackend(Backend, Protocol):
    """A backend whose requests may be in flight several at once (`Capabilities.concurrent`).

    `prepare` builds a batch's request (CPU) in the thread that claims batches;
    `send_prepared` sends it (network) from a worker thread; `halt` makes every worker
    start no new attempt, e.g. after the key was refused.
    """

    def prepare(self, message: Message, recipients: Sequence[RecipientLike]) -> Any: ...

    def send_prepared(self, prepared: Any) -> BatchResult: ...

    def halt(self) -> None: ...


BackendFactory = Callable[["Settings", Notify], Backend]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do, known before it is created (creating one checks its key)."""

    # Holds a send until `send_at` in a batch that can still be cancelled (SendGrid).
    holds_until_send_at: bool = False
    # Writes files instead of reaching people: example.org links and a throwaway
    # unsubscribe key are allowed, as in a rehearsal.
    rehearsal: bool = False
    # The service keeps suppression lists (bounces, spam reports) to sync before sending.
    suppression_lists: bool = False
    # Requests may be in flight several at once (`[delivery] concurrency`): the backend is
    # a `ConcurrentBackend`.
    concurrent: bool = False


@dataclass(frozen=True)
class _Registered:
    target: str  # "module:factory", imported only when chosen
    capabilities: Capabilities


# The SendGrid client stays unloaded for an outbox run: factories are imported when chosen.
_REGISTRY: dict[str, _Registered] = {
    "sendgrid": _Registered(
        "newsletter.deliver.backends.sendgrid.mail:create",
        Capabilities(holds_until_send_at=True, suppression_lists=True, concurrent=True),
    ),
    "smtp": _Registered("newsletter.deliver.backends.smtp:create", Capabilities()),
    "outbox": _Registered(
        "newsletter.deliver.backends.outbox:create", Capabilities(rehearsal=True)
    ),
}


def register(name: str, target: str, can: Capabilities | None = None) -> None:
    """Make a backend available by name; `target` is "module:factory"."""
    _REGISTRY[name] = _Registered(target, can or Capabilities())


def capabilities(name: str) -> Capabilities:
    """A registered backend's capabilities; one given directly (tests, plugins) has none."""
    registered = _REGISTRY.get(name)
    return registered.capabilities if registered else Capabilities()


def names() -> list[str]:
    """The registered backends, in the order they were registered."""
    return list(_REGISTRY)


def rehearsal_backends() -> list[str]:
    """The backends that reach nobody (the outbox): what they sent still has to go out."""
    return [name for name in _REGISTRY if capabilities(name).rehearsal]


def uncounted_rehearsals(settings: Settings) -> list[str]:
    """The rehearsal backends whose sends the workspace's own backend must not count."""
    if capabilities(resolve_name(settings)).rehearsal:
        return []
    return rehearsal_backends()


def resolve_name(settings: Settings, requested: str | None = None) -> str:
    """The backend to use: the option, else the setting; `auto` = sendgrid if a key is set."""
    name = (requested or settings.file.delivery.backend or AUTO).lower()
    if name == AUTO:
        return "sendgrid" if settings.secrets.sendgrid_api_key else "outbox"
    if name not in _REGISTRY:
        raise ConfigError(
            f"unknown delivery backend {name!r}",
            where="--backend" if requested else "newsletter.toml [delivery] backend",
            fix=f"use one of: {AUTO}, {', '.join(names())}",
        )
    return name


def create_backend(name: str, settings: Settings, notify: Notify | None = None) -> Backend:
    module_name, _, factory_name = _REGISTRY[name].target.partition(":")
    factory: BackendFactory = getattr(importlib.import_module(module_name), factory_name)
    return factory(settings, notify or (lambda _message: None))
