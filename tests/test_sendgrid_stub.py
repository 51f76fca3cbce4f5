"""The SendGrid stub, exercised through the official client (sendgrid 6.12.5)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, Mail, Personalization, To

from tests.sendgrid_stub import (
    MAIL_SEND,
    RESERVED_HEADERS,
    TEST_API_KEY,
    SendGridStub,
    StubProcess,
    bypass_proxy_for_loopback,
    sendgrid_stub_fixture,  # noqa: F401  (the `sendgrid_stub` fixture)
)

ISSUE = "2024-05-spring"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    bypass_proxy_for_loopback(monkeypatch)


def client_for(stub: SendGridStub | StubProcess, api_key: str = TEST_API_KEY) -> SendGridAPIClient:
    client = SendGridAPIClient(api_key, host=stub.url)
    client.client.timeout = 10
    return client


def post(client: SendGridAPIClient, body: dict[str, Any]) -> Any:
    return client.client.mail.send.post(request_body=body)


def mail_body(recipients: int = 1, /, **overrides: Any) -> dict[str, Any]:
    body = {
        "from": {"email": "editor@example.com", "name": "The Editor"},
        "subject": "Spring issue",
        "content": [
            {"type": "text/plain", "value": "Hello"},
            {"type": "text/html", "value": "<p>Hello</p>"},
        ],
        "custom_args": {"issue": ISSUE},
        "personalizations": [
            {"to": [{"email": f"reader{i}@example.com", "name": f"Reader {i}"}]}
            for i in range(recipients)
        ],
    }
    body.update(overrides)
    return body


def errors_of(exc: http_errors.HTTPError) -> list[dict[str, Any]]:
    return list(json.loads(exc.body)["errors"])


# --------------------------------------------------------------------------- accepted mail


def test_1000_personalizations_are_accepted_with_a_message_id(sendgrid_stub: SendGridStub) -> None:
    mail = Mail(
        from_email="editor@example.com",
        subject="Spring issue",
        plain_text_content="Hello",
        html_content="<p>Hello</p>",
    )
    mail.custom_arg = CustomArg("issue", ISSUE)
    for i in range(1000):
        personalization = Personalization()
        personalization.add_to(To(f"Reader{i}@Example.com"))
        mail.add_personalization(personalization, index=i)

    response = client_for(sendgrid_stub).send(mail)

    assert response.status_code == 202
    assert response.body == b""
    message_id = response.headers["X-Message-Id"]
    assert message_id
    [record] = sendgrid_stub.accepted
    assert record.message_id == message_id
    assert record.body["personalizations"][0]["to"][0]["email"] == "Reader0@Example.com"
    deliveries = sendgrid_stub.deliveries(issue=ISSUE)
    assert len(deliveries) == 1000
    assert deliveries["reader999@example.com"] == 1
    assert sendgrid_stub.deliveries(issue="another-issue") == {}


def test_message_ids_are_unique(sendgrid_stub: SendGridStub) -> None:
    client = client_for(sendgrid_stub)
    ids = {post(client, mail_body()).headers["X-Message-Id"] for _ in range(5)}
    assert len(ids) == 5
    assert sendgrid_stub.deliveries()["reader0@example.com"] == 5


def test_personalization_custom_args_override_the_message_issue(
    sendgrid_stub: SendGridStub,
) -> None:
    body = mail_body(2)
    body["personalizations"][1]["custom_args"] = {"issue": "other"}
    body["personalizations"][1]["bcc"] = [{"email": "archive@example.com"}]
    post(client_for(sendgrid_stub), body)

    assert sendgrid_stub.deliveries(ISSUE) == {"reader0@example.com": 1}
    assert sendgrid_stub.deliveries("other") == {"reader1@example.com": 1, "archive@example.com": 1}
    assert sum(sendgrid_stub.deliveries().values()) == 3


def test_documented_edge_cases_are_accepted(sendgrid_stub: SendGridStub) -> None:
    body = mail_body(
        send_at=int(time.time()) + 71 * 3600,
        headers={"List-Unsubscribe": "<https://example.com/u>", "List-Unsubscribe-Post": "x"},
        categories=["newsletter", "spring"],
        content=[
            {"type": "text/plain", "value": "Hello"},
            {"type": "text/html", "value": "<p>Hello</p>"},
            {"type": "text/calendar", "value": "BEGIN:VCALENDAR"},
        ],
    )
    assert post(client_for(sendgrid_stub), body).status_code == 202


def test_sandbox_mode_answers_200_and_delivers_nothing(sendgrid_stub: SendGridStub) -> None:
    body = mail_body(mail_settings={"sandbox_mode": {"enable": True}})
    response = post(client_for(sendgrid_stub), body)
    assert response.status_code == 200
    assert sendgrid_stub.deliveries() == {}
    assert [r.status for r in sendgrid_stub.requests] == [200]


def test_without_bodies_only_counters_and_custom_args_are_kept() -> None:
    with SendGridStub(record_bodies=False) as stub:
        post(client_for(stub), mail_body(3))
        [record] = stub.requests
        assert record.body is None
        assert record.custom_args == {"issue": ISSUE}
        assert stub.deliveries(ISSUE) == {f"reader{i}@example.com": 1 for i in range(3)}


def test_concurrent_sends_are_all_counted(sendgrid_stub: SendGridStub) -> None:
    client = client_for(sendgrid_stub)

    def send_many(worker: int) -> None:
        for n in range(10):
            body = mail_body(
                0, personalizations=[{"to": [{"email": f"w{worker}-{n}@example.com"}]}]
            )
            post(client, body)

    threads = [threading.Thread(target=send_many, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(sendgrid_stub.deliveries(ISSUE).values()) == 80
    assert len(sendgrid_stub.requests) == 80


# --------------------------------------------------------------------------- refused mail

IN_73_HOURS = int(time.time()) + 73 * 3600
INVALID_BODIES = {
    "custom_args as a string (erratum)": (
        mail_body(custom_args="issue=1"),
        "custom_args",
        "Expected: object, given: string",
    ),
    "custom_args value not a string": (
        mail_body(custom_args={"issue": 5}),
        "custom_args.issue",
        "Expected: string",
    ),
    "empty to (erratum)": (
        mail_body(personalizations=[{"to": []}]),
        "personalizations.0.to",
        "to parameter is required",
    ),
    "personalization without to": (
        mail_body(personalizations=[{"cc": [{"email": "a@example.com"}]}]),
        "personalizations.0.to",
        "to parameter is required",
    ),
    "no personalizations": (mail_body(0), "personalizations", "at least one"),
    "1001 personalizations": (mail_body(1001), "personalizations", "You have provided 1001"),
    "1001 recipients": (
        mail_body(
            personalizations=[
                {
                    "to": [{"email": "a@example.com"}],
                    "cc": [{"email": f"c{i}@example.com"} for i in range(500)],
                    "bcc": [{"email": f"b{i}@example.com"} for i in range(500)],
                }
            ]
        ),
        "personalizations",
        "limit of 1000 total recipients",
    ),
    "duplicate address across personalizations, other case": (
        mail_body(
            personalizations=[
                {"to": [{"email": "reader@example.com"}]},
                {"to": [{"email": "a@example.com"}], "bcc": [{"email": "Reader@Example.COM"}]},
            ]
        ),
        "personalizations.1.bcc",
        "first duplicate instance of [Reader@Example.COM]",
    ),
    "semicolon in to.name": (
        mail_body(personalizations=[{"to": [{"email": "a@example.com", "name": "Doe; Jane"}]}]),
        "personalizations.0.to.0.name",
        "may not contain",
    ),
    "comma in cc.name": (
        mail_body(
            personalizations=[
                {
                    "to": [{"email": "a@example.com"}],
                    "cc": [{"email": "b@example.com", "name": "Doe, Jane"}],
                }
            ]
        ),
        "personalizations.0.cc.0.name",
        "may not contain",
    ),
    "invalid address": (
        mail_body(personalizations=[{"to": [{"email": "not-an-address"}]}]),
        "personalizations.0.to.0.email",
        "email",
    ),
    "address over 320 characters": (
        mail_body(personalizations=[{"to": [{"email": "a" * 310 + "@example.com"}]}]),
        "personalizations.0.to.0.email",
        "320",
    ),
    "11 categories": (mail_body(categories=[f"c{i}" for i in range(11)]), "categories", "10"),
    "duplicate categories": (mail_body(categories=["a", "a"]), "categories", "unique"),
    "category over 255 characters": (mail_body(categories=["c" * 256]), "categories.0", "255"),
    "non-ASCII category": (mail_body(categories=["café"]), "categories.0", "ASCII"),
    "header value not a string": (
        mail_body(headers={"X-Priority": 1}),
        "headers.X-Priority",
        "Expected: string",
    ),
    "CR/LF in a header value": (
        mail_body(headers={"X-Note": "a\r\nBcc: victim@example.com"}),
        "headers",
        "CR or LF",
    ),
    "CR/LF in a personalization header": (
        mail_body(personalizations=[{"to": [{"email": "a@example.com"}], "headers": {"X": "\n"}}]),
        "personalizations.0.headers",
        "CR or LF",
    ),
    "substitution value not a string": (
        mail_body(
            personalizations=[{"to": [{"email": "a@example.com"}], "substitutions": {"-n-": 2}}]
        ),
        "personalizations.0.substitutions.-n-",
        "Expected: string",
    ),
    "text/html before text/plain": (
        mail_body(
            content=[
                {"type": "text/html", "value": "<p>x</p>"},
                {"type": "text/plain", "value": "x"},
            ]
        ),
        "content.1.type",
        "text/plain, then text/html",
    ),
    "send_at more than 72 hours ahead": (
        mail_body(send_at=IN_73_HOURS),
        "send_at",
        "72 hours",
    ),
    "personalization send_at more than 72 hours ahead": (
        mail_body(personalizations=[{"to": [{"email": "a@example.com"}], "send_at": IN_73_HOURS}]),
        "personalizations.0.send_at",
        "72 hours",
    ),
    "no from": (mail_body(**{"from": None}), "from", "from object must be provided"),
    "no content": (mail_body(content=None), "content", "content parameter is required"),
    "sandbox flag not a boolean": (
        mail_body(mail_settings={"sandbox_mode": {"enable": "true"}}),
        "mail_settings.sandbox_mode.enable",
        "should be a boolean",
    ),
}


@pytest.mark.parametrize(
    ("body", "field", "message"), INVALID_BODIES.values(), ids=list(INVALID_BODIES)
)
def test_invalid_bodies_are_refused_with_field_and_message(
    sendgrid_stub: SendGridStub, body: dict[str, Any], field: str, message: str
) -> None:
    body = {key: value for key, value in body.items() if value is not None}
    with pytest.raises(http_errors.BadRequestsError) as caught:
        post(client_for(sendgrid_stub), body)

    errors = errors_of(caught.value)
    assert any(e["field"] == field and message in e["message"] for e in errors), errors
    assert all(e["help"] is None for e in errors)
    assert sendgrid_stub.deliveries() == {}
    [record] = sendgrid_stub.requests
    assert (record.status, record.delivered) == (400, False)
    assert record.errors


@pytest.mark.parametrize("name", sorted(RESERVED_HEADERS))
@pytest.mark.parametrize("level", ["message", "personalization"])
def test_reserved_headers_are_refused(sendgrid_stub: SendGridStub, name: str, level: str) -> None:
    header = {name.upper() if len(name) % 2 else name.title(): "x"}
    body = mail_body()
    target = body if level == "message" else body["personalizations"][0]
    target["headers"] = header
    with pytest.raises(http_errors.BadRequestsError) as caught:
        post(client_for(sendgrid_stub), body)
    assert "reserved" in errors_of(caught.value)[0]["message"]


def test_bodies_of_30_mb_are_refused_with_413(sendgrid_stub: SendGridStub) -> None:
    body = mail_body(content=[{"type": "text/plain", "value": "x" * 30_000_000}])
    with pytest.raises(http_errors.PayloadTooLargeError) as caught:
        post(client_for(sendgrid_stub), body)
    assert errors_of(caught.value)[0]["message"] == "content too large"


def test_invalid_utf8_is_refused_with_415(sendgrid_stub: SendGridStub) -> None:
    request = urllib.request.Request(
        sendgrid_stub.url + MAIL_SEND,
        data=b'{"subject": "\xff"}',
        headers={"Authorization": f"Bearer {TEST_API_KEY}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 415


# --------------------------------------------------------------------------- authorization


def test_a_wrong_key_is_refused_with_401(sendgrid_stub: SendGridStub) -> None:
    with pytest.raises(http_errors.UnauthorizedError) as caught:
        post(client_for(sendgrid_stub, "SG.wrong"), mail_body())
    assert errors_of(caught.value) == [
        {
            "message": "The provided authorization grant is invalid, expired, or revoked",
            "field": None,
            "help": None,
        }
    ]
    assert sendgrid_stub.deliveries() == {}
    assert [r.status for r in sendgrid_stub.requests] == [401]


def test_a_missing_key_is_refused_with_401(sendgrid_stub: SendGridStub) -> None:
    request = urllib.request.Request(
        sendgrid_stub.url + MAIL_SEND, data=json.dumps(mail_body()).encode()
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 401
    assert json.loads(caught.value.read())["errors"][0]["message"] == "authorization required"


# --------------------------------------------------------------------------- fault injection


def test_a_planned_429_carries_rate_limit_headers(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.rate_limit_reset_offset = 5
    sendgrid_stub.plan("429")
    client = client_for(sendgrid_stub)
    with pytest.raises(http_errors.TooManyRequestsError) as caught:
        post(client, mail_body())

    headers = caught.value.headers
    assert headers["X-RateLimit-Remaining"] == "0"
    assert int(headers["X-RateLimit-Limit"]) > 0
    assert time.time() + 4 <= int(headers["X-RateLimit-Reset"]) <= time.time() + 6
    assert json.loads(caught.value.body) == {
        "errors": [{"field": None, "message": "too many requests"}]
    }
    assert sendgrid_stub.deliveries() == {}
    # The plan is used up: the retry goes through.
    assert post(client, mail_body()).status_code == 202
    assert [(r.status, r.plan) for r in sendgrid_stub.requests] == [(429, "429"), (202, None)]


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("400", http_errors.BadRequestsError),
        ("401", http_errors.UnauthorizedError),
        ("403", http_errors.ForbiddenError),
        ("413", http_errors.PayloadTooLargeError),
        ("500", http_errors.InternalServerError),
        ("503", http_errors.ServiceUnavailableError),
    ],
)
def test_planned_errors_deliver_nothing(
    sendgrid_stub: SendGridStub, status: str, error: type[Exception]
) -> None:
    sendgrid_stub.plan(status, "202")
    client = client_for(sendgrid_stub)
    with pytest.raises(error):
        post(client, mail_body())
    assert sendgrid_stub.deliveries() == {}
    assert post(client, mail_body()).status_code == 202
    assert sendgrid_stub.pending_plan == []


def test_drop_before_response_delivers_but_does_not_answer(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.plan("drop_before_response")
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        post(client_for(sendgrid_stub), mail_body())
    assert sendgrid_stub.deliveries(ISSUE) == {"reader0@example.com": 1}
    [record] = sendgrid_stub.requests
    assert (record.status, record.delivered, record.answered) == (202, True, False)


def test_drop_before_read_delivers_nothing(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.plan("drop_before_read")
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        post(client_for(sendgrid_stub), mail_body())
    assert sendgrid_stub.deliveries() == {}
    [record] = sendgrid_stub.requests
    assert (record.status, record.delivered, record.answered) == (None, False, False)


def test_slow_answers_time_the_client_out_after_delivery(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.plan("slow:30")
    client = client_for(sendgrid_stub)
    client.client.timeout = 0.2
    with pytest.raises(TimeoutError):
        post(client, mail_body())
    assert sendgrid_stub.deliveries(ISSUE) == {"reader0@example.com": 1}


def test_unknown_plan_entries_are_refused(sendgrid_stub: SendGridStub) -> None:
    for entry in ("418", "drop", "slow:soon", "slow:-1"):
        with pytest.raises(ValueError):
            sendgrid_stub.plan(entry)


def test_a_bug_in_the_stub_fails_the_test() -> None:
    stub = SendGridStub()
    with pytest.raises(RuntimeError, match="does not have the spec's response shape"), stub:
        stub.suppressions["bounces"] = [{"email": "a@example.com", "created": "yesterday"}]
        with pytest.raises(http_errors.InternalServerError):
            client_for(stub).client.suppression.bounces.get()


# --------------------------------------------------------------------------- other endpoints


def test_unknown_paths_and_methods(sendgrid_stub: SendGridStub) -> None:
    client = client_for(sendgrid_stub)
    with pytest.raises(http_errors.NotFoundError) as caught:
        client.client.mail.sned.post(request_body={})
    assert errors_of(caught.value) == [{"message": "not found", "field": None, "help": None}]
    with pytest.raises(http_errors.MethodNotAllowedError):
        client.client.mail.send.get()
    # The spec defines only POST here; the global list is GET /v3/suppression/unsubscribes.
    with pytest.raises(http_errors.MethodNotAllowedError):
        client.client.asm.suppressions._("global").get()
    with pytest.raises(http_errors.UnauthorizedError):
        client_for(sendgrid_stub, "SG.wrong").client.suppression.bounces.get()


def test_batches_and_scheduled_sends(sendgrid_stub: SendGridStub) -> None:
    client = client_for(sendgrid_stub)
    created = client.client.mail.batch.post()
    assert created.status_code == 201
    batch_id = json.loads(created.body)["batch_id"]
    assert json.loads(client.client.mail.batch._(batch_id).get().body) == {"batch_id": batch_id}
    with pytest.raises(http_errors.BadRequestsError):
        client.client.mail.batch._("unknown").get()

    post(client, mail_body(batch_id=batch_id, send_at=int(time.time()) + 3600))
    scheduled = client.client.user.scheduled_sends
    with pytest.raises(http_errors.BadRequestsError) as caught:
        scheduled.post(request_body={"batch_id": batch_id, "status": "stop"})
    assert errors_of(caught.value)[0]["field"] == "status"
    answer = scheduled.post(request_body={"batch_id": batch_id, "status": "pause"})
    assert (answer.status_code, json.loads(answer.body)["status"]) == (201, "pause")
    with pytest.raises(http_errors.BadRequestsError):
        scheduled.post(request_body={"batch_id": batch_id, "status": "cancel"})
    assert scheduled._(batch_id).patch(request_body={"status": "cancel"}).status_code == 204
    assert json.loads(scheduled.get().body) == [{"batch_id": batch_id, "status": "cancel"}]
    assert json.loads(scheduled._(batch_id).get().body) == [
        {"batch_id": batch_id, "status": "cancel"}
    ]
    assert scheduled._(batch_id).delete().status_code == 204
    assert json.loads(scheduled.get().body) == []


def test_at_most_ten_batches_are_paused_at_once(sendgrid_stub: SendGridStub) -> None:
    client = client_for(sendgrid_stub)
    batch_ids = [json.loads(client.client.mail.batch.post().body)["batch_id"] for _ in range(11)]
    for batch_id in batch_ids[:10]:
        client.client.user.scheduled_sends.post(
            request_body={"batch_id": batch_id, "status": "pause"}
        )
    with pytest.raises(http_errors.BadRequestsError):
        client.client.user.scheduled_sends.post(
            request_body={"batch_id": batch_ids[10], "status": "pause"}
        )


def bounce(i: int) -> dict[str, Any]:
    return {
        "email": f"b{i}@example.com",
        "created": 1_700_000_000 + i,
        "reason": "550",
        "status": "5.1.1",
    }


def test_suppression_lists_paginate(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.suppressions["bounces"] = [bounce(i) for i in range(7)]
    bounces = client_for(sendgrid_stub).client.suppression.bounces

    pages = [
        json.loads(bounces.get(query_params={"limit": 3, "offset": offset}).body)
        for offset in (0, 3, 6, 9)
    ]
    assert [len(page) for page in pages] == [3, 3, 1, 0]
    assert [item["email"] for page in pages for item in page] == [
        f"b{i}@example.com" for i in range(7)
    ]
    assert len(json.loads(bounces.get().body)) == 7
    for limit in (0, 501, "ten"):
        with pytest.raises(http_errors.BadRequestsError) as caught:
            bounces.get(query_params={"limit": limit})
        assert errors_of(caught.value)[0]["field"] == "limit"


def test_suppression_lists_filter_by_time_and_email(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.suppressions["bounces"] = [bounce(i) for i in range(12)]
    bounces = client_for(sendgrid_stub).client.suppression.bounces
    window = {"start_time": 1_700_000_002, "end_time": 1_700_000_004}
    assert len(json.loads(bounces.get(query_params=window).body)) == 3
    by_prefix = json.loads(bounces.get(query_params={"email": "b1"}).body)
    assert [item["email"] for item in by_prefix] == [
        "b1@example.com",
        "b10@example.com",
        "b11@example.com",
    ]


@pytest.mark.parametrize(
    ("kind", "item"),
    [
        ("unsubscribes", {"email": "u@example.com", "created": 1}),
        ("spam_reports", {"email": "s@example.com", "created": 1, "ip": "192.0.2.1"}),
        ("invalid_emails", {"email": "i@example.com", "created": 1, "reason": "unknown domain"}),
        (
            "blocks",
            {"email": "k@example.com", "created": 1, "reason": "blocked", "status": "4.0.0"},
        ),
    ],
)
def test_each_suppression_list_is_served(
    sendgrid_stub: SendGridStub, kind: str, item: dict[str, Any]
) -> None:
    sendgrid_stub.suppressions[kind] = [item, {**item, "email": "second@example.com"}]
    endpoint = client_for(sendgrid_stub).client.suppression._(kind)
    assert json.loads(endpoint.get(query_params={"limit": 1, "offset": 1}).body) == [
        {**item, "email": "second@example.com"}
    ]


def test_group_and_global_suppressions(sendgrid_stub: SendGridStub) -> None:
    sendgrid_stub.group_suppressions[42] = ["a@example.com", "b@example.com"]
    sendgrid_stub.suppressions["unsubscribes"] = [{"email": "Gone@example.com", "created": 1}]
    asm = client_for(sendgrid_stub).client.asm
    assert json.loads(asm.groups._(42).suppressions.get().body) == [
        "a@example.com",
        "b@example.com",
    ]
    assert json.loads(asm.groups._(7).suppressions.get().body) == []
    assert json.loads(asm.suppressions._("global")._("gone@example.com").get().body) == {
        "recipient_email": "gone@example.com"
    }
    assert json.loads(asm.suppressions._("global")._("here@example.com").get().body) == {}


def test_category_stats_count_accepted_mail_and_what_the_test_adds(
    sendgrid_stub: SendGridStub,
) -> None:
    client = client_for(sendgrid_stub)
    post(client, mail_body(3, categories=["newsletter", ISSUE]))
    today = time.strftime("%Y-%m-%d", time.gmtime())
    sendgrid_stub.add_category_stats(ISSUE, "2020-01-01", delivered=99)  # outside the range
    sendgrid_stub.add_category_stats(ISSUE, today, delivered=2, opens=4)
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    sendgrid_stub.add_category_stats(ISSUE, yesterday, clicks=1)
    query = {"categories": ISSUE, "start_date": yesterday, "aggregated_by": "day"}
    days = json.loads(client.client.categories.stats.get(query_params=query).body)
    assert [day["date"] for day in days] == [yesterday, today]
    (stat,) = days[1]["stats"]
    assert (stat["type"], stat["name"]) == ("category", ISSUE)
    assert {k: v for k, v in stat["metrics"].items() if v} == {
        "requests": 3,
        "delivered": 2,
        "opens": 4,
    }
    assert days[0]["stats"][0]["metrics"]["clicks"] == 1
    assert sendgrid_stub.requests[-1].query == {
        "categories": [ISSUE],
        "start_date": [yesterday],
        "aggregated_by": ["day"],
    }


NEWS = {"categories": "newsletter"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start_date": "2026-01-01"}, "categories"),
        (NEWS, "start_date"),
        ({**NEWS, "start_date": "1.1.2026"}, "start_date"),
        ({**NEWS, "start_date": "2026-02-30"}, "start_date"),
        ({**NEWS, "start_date": "2026-01-02", "end_date": "2026-01-01"}, "end_date"),
        ({**NEWS, "start_date": "2026-01-01", "aggregated_by": "hour"}, "aggregated_by"),
    ],
)
def test_category_stats_queries_sendgrid_would_refuse(
    sendgrid_stub: SendGridStub, query: dict[str, str], field: str
) -> None:
    sendgrid_stub.add_category_stats("newsletter", "2026-01-01", requests=1)
    with pytest.raises(http_errors.BadRequestsError) as caught:
        client_for(sendgrid_stub).client.categories.stats.get(query_params=query)
    assert errors_of(caught.value)[0]["field"] == field


def test_category_stats_refusals(sendgrid_stub: SendGridStub) -> None:
    query = {"categories": "never-sent", "start_date": "2026-01-01", "aggregated_by": "day"}
    stats = client_for(sendgrid_stub).client.categories.stats
    with pytest.raises(http_errors.NotFoundError) as caught:
        stats.get(query_params=query)
    assert errors_of(caught.value)[0]["message"] == "category does not exist"
    with pytest.raises(http_errors.UnauthorizedError):
        client_for(sendgrid_stub, "SG.wrong").client.categories.stats.get(query_params=query)
    sendgrid_stub.plan("403", "429")
    with pytest.raises(http_errors.ForbiddenError):
        stats.get(query_params=query)
    with pytest.raises(http_errors.TooManyRequestsError) as limited:
        stats.get(query_params=query)
    assert limited.value.headers["X-RateLimit-Remaining"] == "0"


# --------------------------------------------------------------------------- subprocess mode


def test_subprocess_mode_writes_its_port_and_answers_the_control_api(tmp_path: Path) -> None:
    with StubProcess(port_file=tmp_path / "port") as process:
        assert int((tmp_path / "port").read_text()) == process.port
        assert process.control("GET", "health") == {"ok": True}
        client = client_for(process)

        assert post(client, mail_body(2)).status_code == 202
        assert process.deliveries(ISSUE) == {"reader0@example.com": 1, "reader1@example.com": 1}
        assert process.deliveries("other") == {}

        process.plan("429", "drop_before_response")
        with pytest.raises(http_errors.TooManyRequestsError):
            post(client, mail_body())
        with pytest.raises((ConnectionError, urllib.error.URLError)):
            post(client, mail_body())
        assert process.deliveries(ISSUE)["reader0@example.com"] == 2
        assert [r["status"] for r in process.requests()] == [202, 429, 202]

        process.set_suppressions({"bounces": [bounce(1)]}, groups={42: ["a@example.com"]})
        assert json.loads(client.client.suppression.bounces.get().body) == [bounce(1)]
        assert json.loads(client.client.asm.groups._(42).suppressions.get().body) == [
            "a@example.com"
        ]
        with pytest.raises(urllib.error.HTTPError) as caught:
            process.plan("teapot")
        assert caught.value.code == 400

        process.reset()
        assert process.deliveries() == {}
        running = process.process
        assert running is not None
    assert running.returncode == 0
