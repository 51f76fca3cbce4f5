"""A local stand-in for the SendGrid v3 API, for tests and benchmarks.

Point the official client at it::

    with SendGridStub(api_key="SG.test") as stub:
        client = SendGridAPIClient("SG.test", host=stub.url)
        client.send(mail)
        assert stub.deliveries(issue="2024-05")["reader@example.com"] == 1

or take the ``sendgrid_stub`` fixture, after importing it into a conftest or test module::

    from tests.sendgrid_stub import sendgrid_stub_fixture  # noqa: F401

Every POST /v3/mail/send body is checked against SendGrid's own OpenAPI description
(``<shared>/sendgrid/tsg_mail_v3.json``, with the errata and documented limits from
``<shared>/sendgrid/README.md``), so a request the stub accepts is one SendGrid documents
as acceptable. The other endpoints are validated against their own spec files, and a path
or method the spec does not define is a 404 or 405, as it would be at SendGrid.

Run as a separate process (for tests that SIGKILL the sender)::

    python tests/sendgrid_stub.py --port 0 --api-key SG.test --port-file PATH

and drive it through the control API under ``/_stub/`` (``StubProcess`` does both):
GET deliveries[?issue=], GET requests, GET in_flight (the peak), GET health, POST plan (a
JSON list), POST suppressions (``{"bounces": [...], "groups": {"42": [...]}}``), POST config,
POST reset.

GET /v3/categories/stats is not in the spec files: it is served from SendGrid's reference
page (query, answer shape, 404 for a category it does not know), from ``category_stats``.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import json
import math
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Self, cast
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import fastjsonschema
import pytest

try:
    from tests._paths import shared_dir
except ModuleNotFoundError:  # run as a script: python tests/sendgrid_stub.py
    from _paths import shared_dir  # type: ignore[no-redef, import-not-found]

TEST_API_KEY = "SG.test"

MAIL_SEND = "/v3/mail/send"
CATEGORY_STATS = "/v3/categories/stats"
# SendGrid's reference page for GET /v3/categories/stats: every metric, zeros included.
CATEGORY_METRICS = (
    "blocks", "bounce_drops", "bounces", "clicks", "deferred", "delivered", "invalid_emails",
    "opens", "processed", "requests", "spam_report_drops", "spam_reports", "unique_clicks",
    "unique_opens", "unsubscribe_drops", "unsubscribes",
)  # fmt: skip
MAX_STATS_CATEGORIES = 10
UNKNOWN_CATEGORY_MESSAGE = "category does not exist"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
MAIL_SEND_SCHEMA = "#/components/requestBodies/PostMailSend/content/application~1json/schema"
# "less than 30MB": the decimal reading is the stricter one, so a client that passes here
# passes SendGrid whichever unit it means.
MAX_BODY_BYTES = 30_000_000
MAX_RECIPIENTS = 1000
MAX_ADDRESS_LENGTH = 320
MAX_SCHEDULE_AHEAD_SECONDS = 72 * 3600
MAX_PAUSED_OR_CANCELLED_BATCHES = 10
MAX_PAGE_SIZE = 500
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)
SUPPRESSION_KINDS = ("unsubscribes", "bounces", "spam_reports", "invalid_emails", "blocks")

# Messages quoted from SendGrid's documentation where it gives one (see the README).
ERROR_MESSAGES = {
    400: "invalid request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    404: "not found",
    405: "method not allowed",
    413: "content too large",
    415: "Invalid UTF8 in request",
    429: "too many requests",
    500: "internal server error",
    503: "SERVICE NOT AVAILABLE",
    504: "gateway timeout",
}
MISSING_AUTH_MESSAGE = "authorization required"
PLAN_DROP_BEFORE_READ = "drop_before_read"
PLAN_DROP_BEFORE_RESPONSE = "drop_before_response"
PLAN_SLOW_PREFIX = "slow:"
# SendGrid answers 401 with this text when the account's plan has no credits left.
PLAN_NO_CREDITS = "no_credits"
NO_CREDITS_MESSAGE = "Maximum credits exceeded"


# --------------------------------------------------------------------------- the spec


@functools.cache
def load_spec(name: str) -> dict[str, Any]:
    """One of the OpenAPI files in <shared>/sendgrid/, e.g. ``tsg_mail_v3.json``."""
    with (shared_dir() / "sendgrid" / name).open(encoding="utf-8") as f:
        return cast(dict[str, Any], json.load(f))


def resolve_pointer(document: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise ValueError(f"only local $refs are supported, got {ref!r}")
    node = document
    for token in ref[1:].split("/")[1:]:
        key = token.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def inline_refs(node: Any, document: Any, _active: tuple[str, ...] = ()) -> Any:
    """Replace every local ``$ref`` in ``node`` by a copy of its target.

    fastjsonschema's generated code for a ``$ref`` costs more than the checks it guards,
    so the validators are compiled from fully inlined schemas.
    """
    if isinstance(node, list):
        return [inline_refs(item, document, _active) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" not in node:
        return {key: inline_refs(value, document, _active) for key, value in node.items()}
    ref = node["$ref"]
    if ref in _active:
        raise ValueError(f"recursive $ref {ref!r} cannot be inlined")
    target = inline_refs(resolve_pointer(document, ref), document, (*_active, ref))
    siblings = {k: inline_refs(v, document, _active) for k, v in node.items() if k != "$ref"}
    # JSON Schema 2020-12 applies a $ref and its siblings together.
    if any(key in target and target[key] != value for key, value in siblings.items()):
        return {"allOf": [target], **siblings}
    return {**target, **siblings}


def _with_documented_rules(spec: dict[str, Any]) -> dict[str, Any]:
    """The mail/send request schema, corrected by the README's errata and limits."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    for address in (schemas["MailFrom"], schemas["MailTo"]):
        address["properties"]["email"]["maxLength"] = MAX_ADDRESS_LENGTH
    body = resolve_pointer(spec, MAIL_SEND_SCHEMA)
    props = body["properties"]
    string_values = {"type": "string"}
    # Erratum: the spec says `type: string`; the live API wants an object of strings.
    props["custom_args"] = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": string_values,
    }
    props["headers"]["additionalProperties"] = string_values
    props["personalizations"]["minItems"] = 1
    personalization = props["personalizations"]["items"]["properties"]
    # Erratum: an empty `to` is refused although the spec has no minItems.
    personalization["to"]["minItems"] = 1
    personalization["to"]["maxItems"] = MAX_RECIPIENTS
    personalization["headers"]["additionalProperties"] = string_values
    personalization["custom_args"]["minProperties"] = 1
    personalization["custom_args"]["additionalProperties"] = string_values
    return spec


def _compile(schema: Any) -> Callable[[Any], Any]:
    return cast(Callable[[Any], Any], fastjsonschema.compile(schema, use_default=False))


@functools.cache
def mail_send_validator() -> Callable[[Any], Any]:
    """The compiled schema check for a mail/send body (raises JsonSchemaValueException)."""
    spec = _with_documented_rules(load_spec("tsg_mail_v3.json"))
    return _compile(inline_refs(resolve_pointer(spec, MAIL_SEND_SCHEMA), spec))


@dataclass(frozen=True, eq=False)
class Operation:
    """One operation of the spec files, with validators compiled on first use."""

    spec_file: str
    template: str
    method: str
    definition: dict[str, Any] = field(repr=False)  # as in the file, $refs not inlined

    def _inlined(self, node: Any) -> Any:
        return inline_refs(node, load_spec(self.spec_file))

    @functools.cached_property
    def body_validator(self) -> Callable[[Any], Any] | None:
        request_body = self.definition.get("requestBody")
        if request_body is None:
            return None
        return _compile(self._inlined(request_body)["content"]["application/json"]["schema"])

    @functools.cached_property
    def response_validator(self) -> Callable[[Any], Any]:
        responses = self.definition["responses"]
        success = next(responses[code] for code in ("200", "201") if code in responses)
        return _compile(self._inlined(success)["content"]["application/json"]["schema"])

    @functools.cached_property
    def query_parameters(self) -> dict[str, dict[str, Any]]:
        parameters = self._inlined(self.definition.get("parameters", []))
        return {p["name"]: p.get("schema", {}) for p in parameters if p.get("in") == "query"}


@dataclass(frozen=True)
class SpecPath:
    template: str
    pattern: re.Pattern[str]
    operations: dict[str, Operation]  # by upper-case method


@functools.cache
def spec_paths() -> tuple[SpecPath, ...]:
    """The paths of the three spec files, concrete paths before templated ones."""
    paths = []
    for spec_file in (
        "tsg_mail_v3.json",
        "tsg_scheduled_sends_v3.json",
        "tsg_suppressions_v3.json",
    ):
        for template, item in load_spec(spec_file)["paths"].items():
            shared_parameters = item.get("parameters", [])
            operations = {
                method.upper(): Operation(
                    spec_file,
                    template,
                    method.upper(),
                    {**op, "parameters": [*shared_parameters, *op.get("parameters", [])]},
                )
                for method, op in item.items()
                if method != "parameters"
            }
            pattern = re.compile(re.sub(r"\\\{\w+\\\}", "([^/]+)", re.escape(template)) + r"\Z")
            paths.append(SpecPath(template, pattern, operations))
    paths.sort(key=lambda path: path.template.count("{"))
    return tuple(paths)


def find_operation(method: str, path: str) -> tuple[Operation, list[str]] | int:
    """The spec operation for a request and its path arguments, or 404 / 405.

    As OpenAPI prescribes, a concrete path wins over a templated one that also matches, so
    GET /v3/asm/suppressions/global is a 405, not GET /v3/asm/suppressions/{email}.
    """
    for spec_path in spec_paths():
        match = spec_path.pattern.match(path)
        if match is not None:
            op = spec_path.operations.get(method)
            if op is None:
                return 405
            return op, [unquote(arg) for arg in match.groups()]
    return 404


# --------------------------------------------------------------------------- validation


class ApiError(NamedTuple):
    message: str
    field: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"message": self.message, "field": self.field, "help": None}


_INDEX = re.compile(r"\[(\d+)\]")
_JSON_TYPES: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}
_TO_REQUIRED = (
    "The to parameter is required for all personalization objects, and must have at least"
    " one email object with a valid email address."
)
# Keyed by (field with indices as "*", rule); quoted from SendGrid's errors page where it
# gives a text.
_SCHEMA_MESSAGES = {
    ("personalizations", "maxItems"): (
        "The personalization block is limited to 1000 personalizations per API request."
        " You have provided {count} personalizations."
    ),
    ("personalizations", "minItems"): "The personalizations field must have at least one item.",
    ("personalizations", "required"): "The personalizations field is required.",
    ("personalizations.*.to", "minItems"): _TO_REQUIRED,
    ("personalizations.*.to", "required"): _TO_REQUIRED,
    ("from", "required"): (
        "The from object must be provided for every email send. It is an object that requires"
        " the email parameter, but may also contain a name parameter."
    ),
    ("mail_settings.sandbox_mode.enable", "type"): (
        "The sandbox mode enable param should be a boolean value."
    ),
}
_DUPLICATE = (
    "Each email address in the personalization block should be unique between to, cc, and"
    " bcc. We found the first duplicate instance of [{email}] in the {field} field."
)
_CONTENT_REQUIRED = (
    "Unless a valid template_id is provided, the content parameter is required. There must be"
    " at least one defined content block."
)
_CONTENT_ORDER = "Content blocks must be ordered text/plain, then text/html, then other types."
_SUBJECT_REQUIRED = (
    "The subject is required. You can get around this requirement if you use a template with"
    " a subject defined or if every personalization has a subject defined."
)
_CONTENT_RANKS = {"text/plain": 0, "text/html": 1}
_HEADER_NAME = re.compile(r"[!-9;-~]+\Z")  # RFC 5322 field name: printable ASCII but ":"
_FORBIDDEN_IN_TOKENS = (";", "\r", "\n")


def _field_of(name: str | None) -> str:
    return _INDEX.sub(r".\1", name or "data").removeprefix("data").lstrip(".")


def _schema_error(exc: fastjsonschema.JsonSchemaValueException) -> ApiError:
    field_name = _field_of(exc.name)
    if exc.rule == "required" and isinstance(exc.value, dict):
        missing = next(key for key in exc.rule_definition if key not in exc.value)
        field_name = f"{field_name}.{missing}" if field_name else missing
    shape = ".".join("*" if part.isdigit() else part for part in field_name.split("."))
    template = _SCHEMA_MESSAGES.get((shape, exc.rule or ""))
    if template is not None:
        count = len(exc.value) if isinstance(exc.value, list) else 0
        message = template.format(count=count)
    elif exc.rule == "type":
        expected = exc.rule_definition
        given = _JSON_TYPES.get(type(exc.value), type(exc.value).__name__)
        message = f"Invalid type. Expected: {expected}, given: {given}."
    else:
        message = exc.message.replace(exc.name or "data", field_name or "the request body", 1)
    return ApiError(message, field_name or None)


def validate_mail_send(body: Any, now: float | None = None) -> list[ApiError]:
    """What SendGrid documents as wrong with a mail/send body; empty when it is valid."""
    try:
        mail_send_validator()(body)
    except fastjsonschema.JsonSchemaValueException as exc:
        return [_schema_error(exc)]
    return _documented_limits(body, time.time() if now is None else now)


def _documented_limits(body: dict[str, Any], now: float) -> list[ApiError]:
    """The README's rules the schema cannot express; ``body`` already passed the schema."""
    errors: list[ApiError] = []
    latest_send_at = now + MAX_SCHEDULE_AHEAD_SECONDS
    seen: set[str] = set()
    duplicate: ApiError | None = None
    recipients = 0
    personalizations = body["personalizations"]
    for i, personalization in enumerate(personalizations):
        for kind in ("to", "cc", "bcc"):
            for j, recipient in enumerate(personalization.get(kind, ())):
                recipients += 1
                address = recipient["email"].lower()
                if address not in seen:
                    seen.add(address)
                elif duplicate is None:
                    where = f"personalizations.{i}.{kind}"
                    duplicate = ApiError(
                        _DUPLICATE.format(email=recipient["email"], field=where), where
                    )
                name = recipient.get("name")
                if name and ("," in name or ";" in name):
                    errors.append(
                        ApiError(
                            f"The {kind}.name may not contain ';' or ','.",
                            f"personalizations.{i}.{kind}.{j}.name",
                        )
                    )
        _check_envelope(personalization, f"personalizations.{i}.", latest_send_at, errors)
    if duplicate is not None:
        errors.append(duplicate)
    if recipients > MAX_RECIPIENTS:
        errors.append(
            ApiError(
                f"There is a limit of {MAX_RECIPIENTS} total recipients (to + cc + bcc) per"
                f" request. You have provided {recipients}.",
                "personalizations",
            )
        )
    _check_envelope(body, "", latest_send_at, errors)
    _check_message(body, errors)
    return errors


def _check_envelope(
    obj: dict[str, Any], prefix: str, latest_send_at: float, errors: list[ApiError]
) -> None:
    """Rules shared by the message level and each personalization."""
    for key, value in (obj.get("headers") or {}).items():
        where = f"{prefix}headers"
        if key.lower() in RESERVED_HEADERS:
            errors.append(ApiError(f"The header {key!r} is reserved and may not be set.", where))
        elif not _HEADER_NAME.match(key):
            errors.append(
                ApiError(
                    f"The header name {key!r} must be printable ASCII without spaces or ':'.", where
                )
            )
        if "\r" in value or "\n" in value:
            errors.append(ApiError(f"The value of header {key!r} may not contain CR or LF.", where))
    send_at = obj.get("send_at")
    if send_at is not None and send_at > latest_send_at:
        errors.append(
            ApiError("Scheduling more than 72 hours in advance is forbidden.", f"{prefix}send_at")
        )
    sender = obj.get("from")
    if sender is not None and not sender["email"].isascii():
        errors.append(ApiError("The from field does not support Unicode.", f"{prefix}from.email"))


def _check_message(body: dict[str, Any], errors: list[ApiError]) -> None:
    """Message-level rules: categories, content, subject, reply-to, attachments."""
    for k, category in enumerate(body.get("categories", ())):
        if not category.isascii():
            errors.append(ApiError("Categories must be ASCII.", f"categories.{k}"))
    template_id = body.get("template_id")
    content = body.get("content")
    if not content and not template_id:
        errors.append(ApiError(_CONTENT_REQUIRED, "content"))
    last_rank = -1
    for k, block in enumerate(content or ()):
        content_type = block["type"]
        if any(token in content_type for token in _FORBIDDEN_IN_TOKENS):
            errors.append(
                ApiError("The content type may not contain ';', CR or LF.", f"content.{k}.type")
            )
        rank = _CONTENT_RANKS.get(content_type.lower(), 2)
        if rank < last_rank:
            errors.append(ApiError(_CONTENT_ORDER, f"content.{k}.type"))
        elif rank == last_rank < 2:
            errors.append(
                ApiError(f"The {content_type} content may only be given once.", f"content.{k}")
            )
        last_rank = max(last_rank, rank)
    if (
        not body.get("subject")
        and not template_id
        and not all(p.get("subject") for p in body["personalizations"])
    ):
        errors.append(ApiError(_SUBJECT_REQUIRED, "subject"))
    if "reply_to" in body and "reply_to_list" in body:
        errors.append(
            ApiError("reply_to and reply_to_list may not be used together.", "reply_to_list")
        )
    for k, attachment in enumerate(body.get("attachments", ())):
        for key in ("filename", "type", "content_id"):
            value = attachment.get(key)
            if value and any(token in value for token in _FORBIDDEN_IN_TOKENS):
                errors.append(
                    ApiError(
                        f"The attachment {key} may not contain ';', CR or LF.",
                        f"attachments.{k}.{key}",
                    )
                )


def recipients_by_issue(body: dict[str, Any]) -> dict[str | None, list[str]]:
    """Lower-cased to/cc/bcc addresses of a valid body, keyed by the merged custom_args.issue."""
    default = (body.get("custom_args") or {}).get("issue")
    result: dict[str | None, list[str]] = {}
    for personalization in body["personalizations"]:
        args = personalization.get("custom_args")
        issue = args.get("issue", default) if args else default
        bucket = result.setdefault(issue, [])
        for kind in ("to", "cc", "bcc"):
            bucket.extend(r["email"].lower() for r in personalization.get(kind, ()))
    return result


# --------------------------------------------------------------------------- the stub


class StubMisconfiguredError(Exception):
    """A test configured the stub with data the spec does not allow."""


@dataclass(slots=True)
class StubResponse:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection instead of answering
    delay: float = 0.0  # seconds to wait before answering

    @classmethod
    def json(
        cls, status: int, payload: Any, headers: Mapping[str, str] | None = None
    ) -> StubResponse:
        return cls(
            status,
            json.dumps(payload).encode(),
            {"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def errors(cls, status: int, *errors: ApiError) -> StubResponse:
        errors = errors or (ApiError(ERROR_MESSAGES.get(status, "error")),)
        return cls.json(status, {"errors": [e.as_json() for e in errors]})


@dataclass(slots=True)
class RequestRecord:
    """One request to the /v3 API, accepted or not."""

    method: str
    path: str
    status: int | None  # None: dropped before the stub read it
    answered: bool = True  # False: the stub closed the connection instead of answering
    delivered: bool = False
    message_id: str | None = None
    plan: str | None = None  # the planned entry this request consumed
    errors: tuple[ApiError, ...] = ()
    custom_args: dict[str, str] | None = None  # message level
    query: dict[str, list[str]] | None = None  # GET /v3/categories/stats only
    body: Any = None  # only with record_bodies=True
    time: float = field(default_factory=time.time)

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "answered": self.answered,
            "delivered": self.delivered,
            "message_id": self.message_id,
            "plan": self.plan,
            "errors": [e.as_json() for e in self.errors],
            "custom_args": self.custom_args,
            "query": self.query,
            "body": self.body,
            "time": self.time,
        }


def check_plan_entry(entry: str) -> str:
    """``entry`` if the stub understands it, else ValueError."""
    if entry in (PLAN_DROP_BEFORE_READ, PLAN_DROP_BEFORE_RESPONSE, PLAN_NO_CREDITS, "202"):
        return entry
    if entry.startswith(PLAN_SLOW_PREFIX):
        seconds = float(entry.removeprefix(PLAN_SLOW_PREFIX))
        if not seconds >= 0:
            raise ValueError(f"slow needs a non-negative number of seconds: {entry!r}")
        return entry
    if entry.isdigit() and int(entry) in ERROR_MESSAGES:
        return entry
    raise ValueError(
        f"unknown plan entry {entry!r}: use a status code ({', '.join(map(str, ERROR_MESSAGES))}"
        f" or 202), {PLAN_DROP_BEFORE_READ!r}, {PLAN_DROP_BEFORE_RESPONSE!r}, {PLAN_NO_CREDITS!r}"
        " or 'slow:<seconds>'"
    )


_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
Handler = Callable[["SendGridStub", Operation, list[str], dict[str, Any], Any], StubResponse]


class SendGridStub:
    """SendGrid's v3 API on 127.0.0.1, in a thread of this process.

    ``plan()`` scripts the answers to the next mail/send and category stats requests;
    ``deliveries()`` and ``requests`` tell what was sent. Configure suppression lists by
    assigning lists in the spec's response shape to ``suppressions[kind]`` and
    ``group_suppressions[group_id]``, and statistics with ``add_category_stats`` (every
    accepted message already counts as ``requests`` of each of its categories, today).
    """

    def __init__(
        self,
        api_key: str = TEST_API_KEY,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        record_bodies: bool = True,
        delay: float = 0.0,
        jitter: float = 0.0,
        rate_limit_limit: int = 600,
        rate_limit_reset_offset: float = 1.0,
        default_page_size: int = MAX_PAGE_SIZE,
        verbose: bool = False,
    ) -> None:
        self.api_key = api_key
        self.host = host
        self.record_bodies = record_bodies
        self.delay = delay  # seconds added to every mail/send answer
        self.jitter = jitter  # and up to this many more, at random (uniform)
        self.peak_in_flight = 0  # the most mail/send requests being answered at once
        self._in_flight = 0
        self.rate_limit_limit = rate_limit_limit
        self.rate_limit_reset_offset = rate_limit_reset_offset
        # The spec leaves the default page size undocumented; only the maximum (500) is.
        self.default_page_size = default_page_size
        self.verbose = verbose
        self.suppressions: dict[str, list[dict[str, Any]]] = {k: [] for k in SUPPRESSION_KINDS}
        self.group_suppressions: dict[int, list[str]] = {}
        # category -> "YYYY-MM-DD" (UTC) -> metric -> count
        self.category_stats: dict[str, dict[str, Counter[str]]] = {}
        self.batches: set[str] = set()
        self.scheduled_sends: dict[str, str] = {}  # batch_id -> "pause" | "cancel"
        self.internal_errors: list[str] = []
        self._requested_port = port
        self._lock = threading.Lock()
        self._plan: deque[str] = deque()
        self._records: list[RequestRecord] = []
        self._deliveries: dict[str | None, Counter[str]] = {}
        self._stopping = threading.Event()
        self._server: _StubServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the stub is already running")
        # Compile before the first request so that no request pays for it.
        mail_send_validator()
        spec_paths()
        self._stopping.clear()
        self._server = _StubServer((self.host, self._requested_port), self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sendgrid-stub-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes answers that are being delayed
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if exc_type is None and self.internal_errors:
            raise RuntimeError("the SendGrid stub failed:\n" + "\n".join(self.internal_errors))

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the stub is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL to give SendGridAPIClient as ``host``."""
        return f"http://{self.host}:{self.port}"

    # -- scripting and inspection

    def plan(self, *entries: str) -> None:
        """Queue answers for the next mail/send or category stats requests, one each.

        An entry is a status code (``"202"`` answers as usual; an error code answers that
        error without delivering), ``"drop_before_read"`` (close before reading the body;
        not delivered), ``"drop_before_response"`` (deliver, then close without answering) or
        ``"slow:<seconds>"`` (deliver, then answer late).
        """
        checked = [check_plan_entry(entry) for entry in entries]
        with self._lock:
            self._plan.extend(checked)

    @property
    def pending_plan(self) -> list[str]:
        with self._lock:
            return list(self._plan)

    def deliveries(self, issue: str | None = None) -> Counter[str]:
        """Messages delivered per lower-cased address; only those of ``issue`` if given.

        The issue of a recipient is ``custom_args["issue"]`` after SendGrid's merge of the
        message-level and personalization-level custom_args.
        """
        with self._lock:
            if issue is not None:
                return Counter(self._deliveries.get(issue, ()))
            total: Counter[str] = Counter()
            for counter in self._deliveries.values():
                total.update(counter)
            return total

    @property
    def requests(self) -> list[RequestRecord]:
        """Every /v3 request so far, in arrival order, including refused ones."""
        with self._lock:
            return list(self._records)

    @property
    def accepted(self) -> list[RequestRecord]:
        """The mail/send requests that were delivered."""
        return [record for record in self.requests if record.delivered]

    def reset(self) -> None:
        """Forget requests, deliveries, plan, batches and suppressions."""
        with self._lock:
            self._plan.clear()
            self._records.clear()
            self._deliveries.clear()
            self.peak_in_flight = 0
            self.batches.clear()
            self.scheduled_sends.clear()
            self.suppressions = {kind: [] for kind in SUPPRESSION_KINDS}
            self.group_suppressions = {}
            self.category_stats = {}

    def add_category_stats(self, category: str, date: str, **metrics: int) -> None:
        """Count ``metrics`` (names as SendGrid's, e.g. delivered=5) for a category on a day."""
        unknown = set(metrics) - set(CATEGORY_METRICS)
        if unknown or not _DATE.match(date):
            raise StubMisconfiguredError(f"unknown metric(s) {sorted(unknown)} or date {date!r}")
        with self._lock:
            days = self.category_stats.setdefault(category, {})
            days.setdefault(date, Counter()).update(metrics)

    # -- request handling, independent of HTTP so that benchmarks can call it directly

    def dispatch(
        self, method: str, target: str, headers: Mapping[str, str], read_body: Callable[[], bytes]
    ) -> StubResponse:
        """Answer one request. ``headers`` has lower-case names; ``read_body`` reads the body."""
        url = urlsplit(target)
        if url.path.startswith("/_stub/"):
            return self._control(method, url.path, url.query, read_body)
        if method == "POST" and url.path == MAIL_SEND:
            return self._mail_send(headers, read_body)
        if url.path == CATEGORY_STATS:
            return self._category_stats_request(method, url.query, headers)
        return self._api(method, url.path, url.query, headers, read_body)

    def entered(self) -> None:
        """A mail/send request arrived (the HTTP layer counts requests being answered)."""
        with self._lock:
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)

    def left(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _record(self, record: RequestRecord, delivered: dict[str, Any] | None = None) -> None:
        recipients = recipients_by_issue(delivered) if delivered is not None else {}
        today = dt.datetime.fromtimestamp(record.time, dt.UTC).date().isoformat()
        with self._lock:
            self._records.append(record)
            for issue, addresses in recipients.items():
                self._deliveries.setdefault(issue, Counter()).update(addresses)
            for category in (delivered or {}).get("categories", ()):
                day = self.category_stats.setdefault(category, {}).setdefault(today, Counter())
                day["requests"] += sum(map(len, recipients.values()))

    def _auth_error(self, headers: Mapping[str, str]) -> StubResponse | None:
        value = headers.get("authorization")
        if not value:
            return StubResponse.errors(401, ApiError(MISSING_AUTH_MESSAGE))
        scheme, _, key = value.partition(" ")
        if scheme.lower() != "bearer" or key.strip() != self.api_key:
            return StubResponse.errors(401)
        return None

    def _mail_send(
        self, headers: Mapping[str, str], read_body: Callable[[], bytes]
    ) -> StubResponse:
        with self._lock:
            entry = self._plan.popleft() if self._plan else None
        if entry == PLAN_DROP_BEFORE_READ:
            self._record(RequestRecord("POST", MAIL_SEND, None, answered=False, plan=entry))
            return StubResponse(0, drop=True)
        raw = read_body()
        if entry == PLAN_NO_CREDITS:
            response = StubResponse.errors(401, ApiError(NO_CREDITS_MESSAGE))
            self._record(RequestRecord("POST", MAIL_SEND, response.status, plan=entry))
            return response
        if entry is not None and entry.isdigit() and entry != "202":
            response = self._planned_error(int(entry))
            self._record(RequestRecord("POST", MAIL_SEND, response.status, plan=entry))
            return response
        response, record, body = self._accept_mail(headers, raw)
        record.plan = entry
        if entry == PLAN_DROP_BEFORE_RESPONSE:
            response.drop = True
            record.answered = False
        elif entry is not None and entry.startswith(PLAN_SLOW_PREFIX):
            response.delay += float(entry.removeprefix(PLAN_SLOW_PREFIX))
        response.delay += self.delay + (random.uniform(0, self.jitter) if self.jitter else 0)
        self._record(record, body if record.delivered else None)
        return response

    def _planned_error(self, status: int) -> StubResponse:
        if status != 429:
            return StubResponse.errors(status)
        reset = math.ceil(time.time() + self.rate_limit_reset_offset)
        return StubResponse.json(
            429,
            {"errors": [{"field": None, "message": ERROR_MESSAGES[429]}]},
            {
                "X-RateLimit-Limit": str(self.rate_limit_limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(reset),
            },
        )

    def _accept_mail(
        self, headers: Mapping[str, str], raw: bytes
    ) -> tuple[StubResponse, RequestRecord, Any]:
        """The usual answer to a mail/send request, its record and the parsed body."""

        def refused(
            response: StubResponse, body: Any = None, *errors: ApiError
        ) -> tuple[StubResponse, RequestRecord, Any]:
            record = RequestRecord("POST", MAIL_SEND, response.status, errors=errors)
            if self.record_bodies:
                record.body = body
            return response, record, body

        if (response := self._auth_error(headers)) is not None:
            return refused(response)
        if len(raw) >= MAX_BODY_BYTES:
            return refused(StubResponse.errors(413))
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            return refused(StubResponse.errors(415))
        except ValueError as exc:
            error = ApiError(f"The request body is not valid JSON: {exc}")
            return refused(StubResponse.errors(400, error), None, error)
        errors = validate_mail_send(body)
        if errors:
            return refused(StubResponse.errors(400, *errors), body, *errors)
        sandbox = body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable") is True
        status = 200 if sandbox else 202
        message_id = secrets.token_urlsafe(16)
        record = RequestRecord(
            "POST",
            MAIL_SEND,
            status,
            delivered=not sandbox,
            message_id=message_id,
            custom_args=body.get("custom_args"),
            body=body if self.record_bodies else None,
        )
        return StubResponse(status, headers={"X-Message-Id": message_id}), record, body

    def _api(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        read_body: Callable[[], bytes],
    ) -> StubResponse:
        found = find_operation(method, path)
        if isinstance(found, int):
            response = StubResponse.errors(found)
            self._record(RequestRecord(method, path, found))
            return response
        op, args = found
        response = self._auth_error(headers) or self._call(op, args, query, read_body)
        errors = () if response.status < 400 else _errors_of(response)
        self._record(RequestRecord(method, path, response.status, errors=errors))
        return response

    def _call(
        self, op: Operation, args: list[str], query: str, read_body: Callable[[], bytes]
    ) -> StubResponse:
        handler = _ROUTES.get((op.method, op.template))
        if handler is None:
            message = f"{op.method} {op.template} is in the spec but the stub does not serve it"
            return StubResponse.errors(501, ApiError(message))
        params: dict[str, Any] = {}
        for name, values in parse_qs(query, keep_blank_values=True).items():
            schema = op.query_parameters.get(name)
            if schema is not None:
                value = _query_value(name, values[-1], schema)
                if isinstance(value, ApiError):
                    return StubResponse.errors(400, value)
                params[name] = value
        body = None
        if op.body_validator is not None:
            try:
                body = json.loads(read_body() or b"null")
                op.body_validator(body)
            except ValueError as exc:  # JsonSchemaValueException is a ValueError too
                if isinstance(exc, fastjsonschema.JsonSchemaValueException):
                    return StubResponse.errors(400, _schema_error(exc))
                return StubResponse.errors(400, ApiError(f"invalid JSON: {exc}"))
        return handler(self, op, args, params, body)

    # -- category statistics (not in the spec files: from SendGrid's reference page)

    def _category_stats_request(
        self, method: str, query: str, headers: Mapping[str, str]
    ) -> StubResponse:
        with self._lock:
            entry = self._plan.popleft() if self._plan and method == "GET" else None
        params = parse_qs(query, keep_blank_values=True)
        if method != "GET":
            response = StubResponse.errors(405)
        elif entry in (PLAN_DROP_BEFORE_READ, PLAN_DROP_BEFORE_RESPONSE):
            response = StubResponse(0, drop=True)
        elif entry == PLAN_NO_CREDITS:
            response = StubResponse.errors(401, ApiError(NO_CREDITS_MESSAGE))
        elif entry is not None and entry.isdigit() and entry != "202":
            response = self._planned_error(int(entry))
        else:
            response = self._auth_error(headers) or self._category_stats(params)
            if entry is not None and entry.startswith(PLAN_SLOW_PREFIX):
                response.delay += float(entry.removeprefix(PLAN_SLOW_PREFIX))
        errors = () if response.drop or response.status < 400 else _errors_of(response)
        status = None if response.drop else response.status
        record = RequestRecord(method, CATEGORY_STATS, status, not response.drop, plan=entry)
        record.errors, record.query = errors, params
        self._record(record)
        return response

    def _category_stats(self, params: dict[str, list[str]]) -> StubResponse:
        categories = params.get("categories", [])
        problem = _stats_query_problem(params)
        if problem is not None:
            return StubResponse.errors(400, problem)
        start = dt.date.fromisoformat(params["start_date"][-1])
        today = dt.datetime.now(dt.UTC).date()
        end = dt.date.fromisoformat(params.get("end_date", [today.isoformat()])[-1])
        by = params.get("aggregated_by", ["day"])[-1]
        with self._lock:
            if any(category not in self.category_stats for category in categories):
                error = ApiError(UNKNOWN_CATEGORY_MESSAGE, "categories")
                return StubResponse.errors(404, error)
            periods: dict[str, dict[str, Counter[str]]] = {}
            day = start
            while day <= end:
                period = _period_of(day, by).isoformat()
                bucket = periods.setdefault(period, {c: Counter() for c in categories})
                for category in categories:
                    bucket[category].update(self.category_stats[category].get(day.isoformat(), {}))
                day += dt.timedelta(days=1)
        answer = [
            {
                "date": period,
                "stats": [
                    {
                        "type": "category",
                        "name": category,
                        "metrics": {name: counts[name] for name in CATEGORY_METRICS},
                    }
                    for category, counts in stats.items()
                ],
            }
            for period, stats in periods.items()
        ]
        return StubResponse.json(200, answer)

    # -- batches and scheduled sends

    def _create_batch(self, op: Operation, args: list[str], query: Any, body: Any) -> StubResponse:
        batch_id = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(32))
        with self._lock:
            self.batches.add(batch_id)
        return StubResponse.json(201, {"batch_id": batch_id})

    def _get_batch(self, op: Operation, args: list[str], query: Any, body: Any) -> StubResponse:
        if args[0] not in self.batches:
            return StubResponse.errors(400, ApiError("invalid batch id", "batch_id"))
        return StubResponse.json(200, {"batch_id": args[0]})

    def _pause_or_cancel(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        batch_id, status = body["batch_id"], body["status"]
        with self._lock:
            if batch_id not in self.batches:
                error = ApiError("invalid batch id", "batch_id")
            elif batch_id in self.scheduled_sends:
                error = ApiError("the batch is already paused or cancelled", "batch_id")
            elif len(self.scheduled_sends) >= MAX_PAUSED_OR_CANCELLED_BATCHES:
                error = ApiError(
                    f"at most {MAX_PAUSED_OR_CANCELLED_BATCHES} batches can be paused or"
                    " cancelled at once",
                    "batch_id",
                )
            else:
                self.scheduled_sends[batch_id] = status
                return StubResponse.json(201, {"batch_id": batch_id, "status": status})
        return StubResponse.errors(400, error)

    def _list_scheduled_sends(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        with self._lock:
            items = [{"batch_id": b, "status": s} for b, s in self.scheduled_sends.items()]
        return StubResponse.json(200, items)

    def _get_scheduled_send(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        status = self.scheduled_sends.get(args[0])
        # The spec answers a list here, even for a single batch id.
        items = [] if status is None else [{"batch_id": args[0], "status": status}]
        return StubResponse.json(200, items)

    def _update_scheduled_send(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        with self._lock:
            if args[0] not in self.scheduled_sends:
                return StubResponse.errors(404)
            self.scheduled_sends[args[0]] = body["status"]
        return StubResponse(204)

    def _delete_scheduled_send(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        with self._lock:
            if self.scheduled_sends.pop(args[0], None) is None:
                return StubResponse.errors(404)
        return StubResponse(204)

    # -- suppressions

    def _suppression_list(
        self, op: Operation, args: list[str], query: dict[str, Any], body: Any
    ) -> StubResponse:
        kind = op.template.rsplit("/", 1)[1]
        items = self.suppressions.get(kind, [])
        start, end = query.get("start_time"), query.get("end_time")
        if start is not None:
            items = [item for item in items if item.get("created", 0) >= start]
        if end is not None:
            items = [item for item in items if item.get("created", 0) <= end]
        if query.get("email"):
            # A prefix match, with % as a wildcard.
            parts = map(re.escape, query["email"].split("%"))
            matcher = re.compile(".*".join(parts), re.IGNORECASE)
            items = [item for item in items if matcher.match(item.get("email", ""))]
        offset = query.get("offset", 0)
        page = items[offset : offset + query.get("limit", self.default_page_size)]
        try:
            op.response_validator(page)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise StubMisconfiguredError(
                f"suppressions[{kind!r}] does not have the spec's response shape: {exc.message}"
            ) from exc
        return StubResponse.json(200, page)

    def _group_suppressions(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        emails = self.group_suppressions.get(int(args[0]), []) if args[0].isdigit() else []
        try:
            op.response_validator(emails)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise StubMisconfiguredError(
                f"group_suppressions[{args[0]}] must be a list of addresses: {exc.message}"
            ) from exc
        return StubResponse.json(200, emails)

    def _global_suppression(
        self, op: Operation, args: list[str], query: Any, body: Any
    ) -> StubResponse:
        email = args[0]
        suppressed = any(
            item.get("email", "").lower() == email.lower()
            for item in self.suppressions["unsubscribes"]
        )
        # The spec documents an empty object for an address that is not suppressed.
        return StubResponse.json(200, {"recipient_email": email} if suppressed else {})

    # -- the control API, for a stub in another process

    def _control(
        self, method: str, path: str, query: str, read_body: Callable[[], bytes]
    ) -> StubResponse:
        route = f"{method} {path.removeprefix('/_stub')}"
        try:
            payload: Any = json.loads(read_body() or b"null") if method == "POST" else None
            if route == "GET /health":
                return StubResponse.json(200, {"ok": True})
            if route == "GET /deliveries":
                issue = parse_qs(query).get("issue", [None])[-1]
                return StubResponse.json(200, dict(self.deliveries(issue)))
            if route == "GET /in_flight":
                return StubResponse.json(200, {"peak": self.peak_in_flight})
            if route == "GET /requests":
                return StubResponse.json(200, [record.as_json() for record in self.requests])
            if route == "POST /plan":
                self.plan(*payload)
                return StubResponse.json(200, {"pending": self.pending_plan})
            if route == "POST /suppressions":
                self._set_suppressions(payload)
                return StubResponse(204)
            if route == "POST /config":
                self._configure(payload)
                return StubResponse(204)
            if route == "POST /reset":
                self.reset()
                return StubResponse(204)
        except (TypeError, ValueError, KeyError) as exc:
            return StubResponse.json(400, {"error": f"{type(exc).__name__}: {exc}"})
        return StubResponse.json(404, {"error": f"no control endpoint {route}"})

    def _set_suppressions(self, payload: dict[str, Any]) -> None:
        """``{"bounces": [...], ..., "groups": {"42": ["a@example.com"]}}``; replaces lists."""
        for kind, items in payload.items():
            if kind == "groups":
                for group_id, emails in items.items():
                    self.group_suppressions[int(group_id)] = list(emails)
            elif kind in SUPPRESSION_KINDS:
                self.suppressions[kind] = list(items)
            else:
                raise ValueError(f"unknown suppression list {kind!r}")

    def _configure(self, payload: dict[str, Any]) -> None:
        """``{"delay": 0.01, "rate_limit_reset_offset": 5, ...}``."""
        settable = (
            "delay",
            "jitter",
            "rate_limit_limit",
            "rate_limit_reset_offset",
            "default_page_size",
        )
        for key, value in payload.items():
            if key not in settable:
                raise ValueError(f"{key!r} cannot be set; use one of {settable}")
            setattr(self, key, value)


def _errors_of(response: StubResponse) -> tuple[ApiError, ...]:
    try:
        items = json.loads(response.body)["errors"]
        return tuple(ApiError(e.get("message", ""), e.get("field")) for e in items)
    except (ValueError, KeyError, TypeError):
        return ()


def _stats_query_problem(params: dict[str, list[str]]) -> ApiError | None:
    """What SendGrid's reference page says is wrong with a category stats query."""
    categories = params.get("categories", [])
    if not categories or not all(categories):
        return ApiError("categories is required", "categories")
    if len(set(categories)) > MAX_STATS_CATEGORIES:
        return ApiError(f"at most {MAX_STATS_CATEGORIES} categories", "categories")
    for name in ("start_date", "end_date"):
        values = params.get(name)
        if values is None and name == "end_date":
            continue
        try:
            if not values or not _DATE.match(values[-1]):
                raise ValueError
            dt.date.fromisoformat(values[-1])
        except ValueError:
            return ApiError(f"{name} must follow the format YYYY-MM-DD", name)
    end = params.get("end_date", ["9999-12-31"])[-1]
    if end < params["start_date"][-1]:
        return ApiError("end_date must not be before start_date", "end_date")
    if params.get("aggregated_by", ["day"])[-1] not in ("day", "week", "month"):
        return ApiError('aggregated_by must be "day", "week" or "month"', "aggregated_by")
    return None


def _period_of(day: dt.date, aggregated_by: str) -> dt.date:
    if aggregated_by == "week":
        return day - dt.timedelta(days=day.weekday())
    if aggregated_by == "month":
        return day.replace(day=1)
    return day


def _query_value(name: str, raw: str, schema: Mapping[str, Any]) -> Any:
    if schema.get("type") != "integer":
        return raw
    try:
        value = int(raw)
    except ValueError:
        return ApiError(f"{name} must be an integer", name)
    low, high = schema.get("minimum"), schema.get("maximum")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"at least {low}" if high is None else f"between {low} and {high}"
        return ApiError(f"{name} must be {bounds}", name)
    return value


_ROUTES: dict[tuple[str, str], Handler] = {
    ("POST", "/v3/mail/batch"): SendGridStub._create_batch,
    ("GET", "/v3/mail/batch/{batch_id}"): SendGridStub._get_batch,
    ("POST", "/v3/user/scheduled_sends"): SendGridStub._pause_or_cancel,
    ("GET", "/v3/user/scheduled_sends"): SendGridStub._list_scheduled_sends,
    ("GET", "/v3/user/scheduled_sends/{batch_id}"): SendGridStub._get_scheduled_send,
    ("PATCH", "/v3/user/scheduled_sends/{batch_id}"): SendGridStub._update_scheduled_send,
    ("DELETE", "/v3/user/scheduled_sends/{batch_id}"): SendGridStub._delete_scheduled_send,
    **{
        ("GET", f"/v3/suppression/{kind}"): SendGridStub._suppression_list
        for kind in SUPPRESSION_KINDS
    },
    ("GET", "/v3/asm/groups/{group_id}/suppressions"): SendGridStub._group_suppressions,
    ("GET", "/v3/asm/suppressions/global/{email}"): SendGridStub._global_suppression,
}


# --------------------------------------------------------------------------- HTTP


class _StubServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a client may keep an idle connection open forever
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], stub: SendGridStub) -> None:
        self.stub = stub
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up are part of the tests, not failures.
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _StubServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.stub.verbose:
            super().log_message(format, *args)

    def _handle(self) -> None:
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        body: list[bytes] = []

        def read_body() -> bytes:
            if not body:
                body.append(self.rfile.read(length) if length else b"")
            return body[0]

        headers = {name.lower(): value for name, value in self.headers.items()}
        # Counted until the answer is written: the client cannot have it before then.
        counted = [self.command == "POST" and self.path == MAIL_SEND]
        if counted[0]:
            stub.entered()

        def answering() -> None:
            if counted[0]:
                counted[0] = False
                stub.left()

        try:
            self._answer(stub, length, body, headers, read_body, answering)
        finally:
            answering()

    def _answer(
        self,
        stub: SendGridStub,
        length: int,
        body: list[bytes],
        headers: dict[str, str],
        read_body: Callable[[], bytes],
        answering: Callable[[], None],
    ) -> None:
        try:
            response = stub.dispatch(self.command, self.path, headers, read_body)
        except Exception:
            stub.internal_errors.append(traceback.format_exc())
            traceback.print_exc()
            message = "the SendGrid stub failed; see SendGridStub.internal_errors"
            response = StubResponse.errors(500, ApiError(message))
        if response.drop:
            answering()
            self.close_connection = True
            return
        if length and not body:
            self.close_connection = True  # the unread body would be taken for the next request
        if response.delay > 0:
            stub._stopping.wait(response.delay)
        answering()
        try:
            self.send_response(response.status)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# --------------------------------------------------------------------------- pytest


def bypass_proxy_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep urllib, and so the official client, from sending loopback traffic to a proxy."""
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name)
        monkeypatch.setenv(name, ",".join(filter(None, [current, "127.0.0.1", "localhost"])))


@pytest.fixture(name="sendgrid_stub")
def sendgrid_stub_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[SendGridStub]:
    """A running stub that accepts the key ``SG.test``."""
    bypass_proxy_for_loopback(monkeypatch)
    with SendGridStub(TEST_API_KEY) as stub:
        yield stub


# --------------------------------------------------------------------------- subprocess


class StubProcess:
    """The stub in a child process, driven through its control API.

    For tests that kill the sending process: the stub's record outlives the sender.
    """

    def __init__(
        self,
        api_key: str = TEST_API_KEY,
        *,
        port_file: Path,
        extra_args: Iterable[str] = (),
        startup_timeout: float = 10.0,
    ) -> None:
        self.api_key = api_key
        self.port_file = port_file
        self.extra_args = list(extra_args)
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        # Control calls must not go through a proxy, whatever the environment says.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.port_file.unlink(missing_ok=True)
        command = [sys.executable, __file__, "--port", "0", "--api-key", self.api_key]
        command += ["--port-file", str(self.port_file), *self.extra_args]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + self.startup_timeout
        while not self.port_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the stub exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the stub did not write its port file in time")
            time.sleep(0.02)
        self.port = int(self.port_file.read_text())
        return self

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def control(self, method: str, path: str, payload: Any = None) -> Any:
        """Call ``/_stub/<path>`` and return the decoded JSON answer (None when empty)."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(f"{self.url}/_stub/{path}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with self._opener.open(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def deliveries(self, issue: str | None = None) -> Counter[str]:
        query = "" if issue is None else "?" + urlencode({"issue": issue})
        return Counter(self.control("GET", "deliveries" + query))

    def requests(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self.control("GET", "requests"))

    def peak_in_flight(self) -> int:
        """The most mail/send requests the stub was answering at once."""
        return int(self.control("GET", "in_flight")["peak"])

    def plan(self, *entries: str) -> None:
        self.control("POST", "plan", list(entries))

    def set_suppressions(
        self,
        lists: Mapping[str, list[dict[str, Any]]] | None = None,
        groups: Mapping[int, list[str]] | None = None,
    ) -> None:
        payload: dict[str, Any] = dict(lists or {})
        if groups:
            payload["groups"] = {str(group_id): emails for group_id, emails in groups.items()}
        self.control("POST", "suppressions", payload)

    def configure(self, **settings: Any) -> None:
        self.control("POST", "config", settings)

    def reset(self) -> None:
        self.control("POST", "reset")


def _write_atomically(path: Path, text: str) -> None:
    # A reader polling for the file must never see it half written.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A local stand-in for the SendGrid v3 API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=TEST_API_KEY)
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    parser.add_argument(
        "--record-bodies",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep each accepted body (--no-record-bodies keeps only counters)",
    )
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument(
        "--jitter", type=float, default=0.0, help="up to this many seconds more, at random"
    )
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = parser.parse_args(argv)

    stub = SendGridStub(
        args.api_key,
        host=args.host,
        port=args.port,
        record_bodies=args.record_bodies,
        delay=args.delay,
        jitter=args.jitter,
        verbose=args.verbose,
    )
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    with stub:
        if args.port_file is not None:
            _write_atomically(args.port_file, f"{stub.port}\n")
        print(f"SendGrid stub listening on {stub.url}", flush=True)
        while not stopping.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
