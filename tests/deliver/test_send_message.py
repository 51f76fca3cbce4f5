"""The message: per-recipient values, header injection, and the SendGrid request body."""

from __future__ import annotations

import json
from dataclasses import replace
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import pytest

from newsletter.audience.unsubscribe import UnsubscribeLinks
from newsletter.deliver.backends.sendgrid.request import SendGridRequest, validate_body
from newsletter.deliver.message import Address, issue_categories, mime_message
from newsletter.errors import UserError
from newsletter.list_headers import ONE_CLICK
from tests._workspace import SECRET, recipient, simple_message
from tests.sendgrid_stub import validate_mail_send


def test_values_fall_back_to_there_and_sign_the_unsubscribe_link() -> None:
    message = simple_message()
    values = message.values(recipient("ann@example.org"))
    assert values["first_name"] == "there"
    assert values["email"] == "ann@example.org"
    token = values["unsubscribe_url"].rpartition("?t=")[2]
    request = message.unsubscribe.read({"t": token})
    assert request is not None and request.address == "ann@example.org"
    assert request.issue == message.issue


def test_personalised_html_is_escaped_and_text_is_not() -> None:
    message = simple_message()
    finished = message.personalize(recipient("bob@example.org", first_name="Bob <b> & Co"))
    assert "<p>Hi Bob &lt;b&gt; &amp; Co,</p>" in finished.html
    assert "Hi Bob <b> & Co," in finished.text
    assert "%%" not in finished.html + finished.text


def test_a_name_holding_a_merge_tag_is_not_expanded_again() -> None:
    message = simple_message()
    values = message.values(recipient("eve@example.org", first_name="%%email%%"))
    assert "%%" not in values["first_name"]


@pytest.mark.parametrize(
    "subject", ["Hello\r\nBcc: victim@example.org", "Hello\nX-Evil: 1", "Hello\rthere", "a\x00b"]
)
def test_a_subject_with_a_line_break_or_control_character_is_refused(subject: str) -> None:
    with pytest.raises(UserError, match="the subject contains"):
        simple_message(subject=subject)


def test_a_sender_name_with_a_line_break_is_refused() -> None:
    with pytest.raises(UserError, match="the sender name contains a line break"):
        simple_message(sender_name="Editors\r\nBcc: victim@example.org")


def test_a_recipient_name_cannot_inject_headers_into_the_mime_message() -> None:
    message = simple_message()
    evil = recipient("ann@example.org", name="Ann\r\nBcc: victim@example.org")
    mime = mime_message(message, evil)
    parsed = cast(EmailMessage, message_from_bytes(mime.as_bytes(), policy=policy.default))
    assert parsed["Bcc"] is None
    assert parsed["To"].addresses[0].addr_spec == "ann@example.org"
    assert "\n" not in str(parsed["To"])


def test_the_mime_message_has_every_header_and_both_parts() -> None:
    message = simple_message()
    mime = mime_message(message, recipient("ann@example.org", "Ann Smith", "Ann"))
    parsed = cast(EmailMessage, message_from_bytes(mime.as_bytes(), policy=policy.default))
    assert parsed["From"] == "The Editors <newsletter@example.org>"
    assert parsed["To"] == "Ann Smith <ann@example.org>"
    assert parsed["Subject"] == "The spring issue"
    assert parsed["Date"] and parsed["Message-ID"].endswith("@example.org>")
    assert parsed["Reply-To"] == "editors@example.org"
    assert parsed["List-Unsubscribe"].startswith("<https://example.org/unsubscribe?")
    assert parsed["List-Unsubscribe-Post"] == ONE_CLICK
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    text = parsed.get_body(("plain",))
    assert text is not None and "Hi Ann," in text.get_content()


def _body(**kwargs: Any) -> dict[str, Any]:
    message = simple_message(**kwargs)
    batch = [
        recipient("ann@example.org", "Ann Smith", "Ann"),
        recipient("bob@example.org", "Bob, the; builder", None),
        recipient("cem@example.org", "Cem\r\nBcc: x@example.org", "Cem"),
    ]
    return json.loads(SendGridRequest(message).encode(batch).payload)  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "html",
    [
        '<p>Hi %%first_name%%,</p><p><a href="%%unsubscribe_url%%">Unsubscribe</a></p>',
        "<p>%%email%% %%first_name%% %%unsubscribe_url%%</p>",
        "<p>No tags at all</p>",
    ],
)
@pytest.mark.parametrize(
    "base_url", ["https://example.org/unsubscribe", "https://example.org/u?list=a&b=<c>"]
)
def test_the_encoded_body_is_exactly_the_body_as_json_dumps_writes_it(
    html: str, base_url: str
) -> None:
    unsubscribe = UnsubscribeLinks(base_url, "list & <co>", SECRET)
    message = replace(simple_message(html=html), unsubscribe=unsubscribe)
    batch = [
        recipient("ann@example.org", "Ann Smith", "Ann"),
        recipient("bob@example.org", "Bob, the; builder", None),
        recipient("cem@example.org", "Cem\r\nBcc: x@example.org", "Cem"),
        recipient("dörte@bücher.example", "Dörte Müller", None),
        recipient("eve%%x@example.org", 'Eve "%%email%%" <b>', "%%email%% & <i>"),
        recipient("fay@example.org", "  Fay   Lee ", ""),
        recipient("gus@example.org", None, None),
        recipient("ann2@example.org", "Ann Smith", "Ann"),  # the same name again
        recipient("hal@example.org", "Dr. Hal 9000 \u2028 \U0001f600", None),
    ]
    request = SendGridRequest(message)
    for _ in range(2):  # the second time from the names already seen
        payload = request.encode(batch).payload
        assert payload == json.dumps(request.body(batch))
    assert validate_body(json.loads(payload)) == []


def test_the_request_body_passes_sendgrids_own_schema_and_limits() -> None:
    body = _body(asm_group_id=42)
    assert validate_mail_send(body) == []
    assert validate_body(body) == []


def test_the_request_body_has_one_personalization_per_recipient_in_order() -> None:
    body = _body()
    assert [p["to"][0]["email"] for p in body["personalizations"]] == [
        "ann@example.org",
        "bob@example.org",
        "cem@example.org",
    ]
    names = [p["to"][0].get("name") for p in body["personalizations"]]
    assert names == ["Ann Smith", "Bob the builder", "Cem Bcc: x@example.org"]


def test_parts_once_per_request_and_values_as_substitutions() -> None:
    body = _body()
    assert [block["type"] for block in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"].startswith("Hi %%text_first_name%%,")
    assert body["content"][1]["value"].startswith("<p>Hi %%first_name%%,")
    first = body["personalizations"][0]["substitutions"]
    assert first["%%first_name%%"] == "Ann"
    assert first["%%text_first_name%%"] == "Ann"
    assert body["personalizations"][1]["substitutions"]["%%first_name%%"] == "there"


def test_an_unsubscribe_url_that_escaping_leaves_alone_travels_once_for_both_parts() -> None:
    body = _body()
    assert "Unsubscribe: %%unsubscribe_url%%" in body["content"][0]["value"]
    for personalization in body["personalizations"]:
        substitutions = personalization["substitutions"]
        assert "%%text_unsubscribe_url%%" not in substitutions
        url = substitutions["%%unsubscribe_url%%"]
        assert url.startswith("https://example.org/unsubscribe?t=")
        assert json.dumps(personalization).count(url) == 2  # the substitution and the header


def test_an_unsubscribe_url_with_an_ampersand_has_its_own_tag_in_each_part() -> None:
    unsubscribe = UnsubscribeLinks("https://example.org/u?list=a", "balkan-brief", SECRET)
    message = replace(simple_message(), unsubscribe=unsubscribe)
    body = SendGridRequest(message).body([recipient("ann@example.org")])
    assert "Unsubscribe: %%text_unsubscribe_url%%" in body["content"][0]["value"]
    first = body["personalizations"][0]["substitutions"]
    assert first["%%text_unsubscribe_url%%"].startswith("https://example.org/u?list=a&t=")
    assert first["%%unsubscribe_url%%"] == first["%%text_unsubscribe_url%%"].replace("&", "&amp;")
    filled = message.personalize(recipient("ann@example.org"))  # as the SMTP backend sends it
    assert first["%%text_unsubscribe_url%%"] in filled.text
    assert first["%%unsubscribe_url%%"] in filled.html
    assert validate_body(body) == []


def test_issue_is_named_in_categories_and_custom_args_as_an_object() -> None:
    body = _body()
    assert body["custom_args"] == {"issue": "spring"}
    assert body["categories"] == ["newsletter"]
    assert "asm" not in body
    assert _body(asm_group_id=42)["asm"] == {"group_id": 42}


def test_one_click_unsubscribe_headers_reach_every_recipient() -> None:
    body = _body()
    assert body["headers"] == {"List-Unsubscribe-Post": ONE_CLICK}
    for personalization in body["personalizations"]:
        url = personalization["substitutions"]["%%unsubscribe_url%%"]
        assert personalization["headers"] == {"List-Unsubscribe": f"<{url}>"}


def test_a_test_message_is_marked_in_subject_and_custom_args() -> None:
    message = simple_message().as_test()
    body = SendGridRequest(message).body([recipient("me@example.org")])
    assert body["subject"] == "[TEST] The spring issue"
    assert body["custom_args"] == {"issue": "spring", "test": "true"}


def test_validate_body_finds_an_unfilled_tag_and_a_duplicate() -> None:
    body = _body()
    del body["personalizations"][1]["substitutions"]["%%first_name%%"]
    body["personalizations"][2]["to"][0]["email"] = "ANN@example.org"
    problems = validate_body(body)
    assert "personalization 1: merge tag(s) left unfilled: %%first_name%%" in problems
    assert "personalization 2: ANN@example.org appears twice in one request" in problems


def test_a_non_ascii_sender_address_is_refused() -> None:
    message = simple_message()
    with pytest.raises(UserError, match="is not ASCII"):
        type(message)(**{**message.__dict__, "sender": Address("zoë@example.org")})


def test_every_message_carries_its_issue_as_one_more_category() -> None:
    assert issue_categories(["newsletter", "weekly"], "2026-12-01") == (
        "newsletter",
        "weekly",
        "2026-12-01",
    )
    assert issue_categories(["newsletter", "spring"], "spring") == ("newsletter", "spring")
    assert issue_categories([], "spring") == ("spring",)


def test_ten_configured_categories_leave_no_room_for_the_issue() -> None:
    message = simple_message()
    ten = issue_categories([f"c{i}" for i in range(10)], "spring")
    with pytest.raises(UserError, match="list at most 9 other ones"):
        type(message)(**{**message.__dict__, "categories": ten})


def test_a_test_message_leaves_the_issue_category_out() -> None:
    message = simple_message()
    message = type(message)(**{**message.__dict__, "categories": ("newsletter", "spring")})
    assert message.as_test().categories == ("newsletter",)


@pytest.mark.parametrize(
    "categories",
    [tuple(f"c{i}" for i in range(11)), ("news", "news"), ("nouvelles-é",), ("",), ("x" * 256,)],
)
def test_categories_sendgrid_would_refuse_are_refused_up_front(
    categories: tuple[str, ...],
) -> None:
    message = simple_message()
    with pytest.raises(UserError, match=r"newsletter.toml \[delivery\] categories"):
        type(message)(**{**message.__dict__, "categories": categories})


def test_idn_domain_is_sent_in_ascii_and_a_non_ascii_local_part_is_one_clear_error() -> None:
    assert (
        Address("zoe@bücher.de", "Zoë").formatted() == "=?utf-8?q?Zo=C3=AB?= <zoe@xn--bcher-kva.de>"
    )
    with pytest.raises(UserError, match="needs SMTPUTF8"):
        Address("jörg@example.org").formatted()


@pytest.mark.parametrize(
    ("name", "greeted"),
    [
        ("Kim Lee", "Kim"),
        ("Dr. Kim Lee", "Kim"),
        ("Jean-Luc Picard", "Jean-Luc"),
        ("Zoë O’Brien", "Zoë"),
        ("Lee, Kim", "there"),  # the order of the names is unknown
        ("kim@example.org", "there"),
        ("42", "there"),
        ("Mr Kim Lee", "Kim"),
        ("Frau Anna Schmidt", "Anna"),
        ("Prof. Dr. Hans Müller", "Hans"),
        ("KIM LEE", "Kim"),
        ("J. R. R. Tolkien", "there"),  # initials: which name is used is unclear
        ("ACME GmbH", "there"),  # an organisation
        ("Newsroom Team", "there"),
        ("Mrs", "there"),
    ],
)
def test_a_subscriber_with_only_a_full_name_is_greeted_by_the_given_name(
    name: str, greeted: str
) -> None:
    values = simple_message().values(recipient("kim@example.org", name, None))
    assert values["first_name"] == greeted
