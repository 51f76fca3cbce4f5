"""The outbox backend: one .eml per recipient, read back with the email package."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import cast

import pytest

from newsletter.deliver.backends import Outcome
from newsletter.deliver.backends.outbox import OutboxBackend, file_name
from newsletter.errors import DeliveryError
from tests._workspace import recipient, simple_message


def _read(path: Path) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=policy.default))


def test_one_file_per_recipient_with_full_headers_and_both_parts(tmp_path: Path) -> None:
    backend = OutboxBackend(tmp_path / "outbox")
    batch = [
        recipient("ann@example.org", "Ann Smith", "Ann"),
        recipient("Bob@Example.org", None, None),
    ]
    result = backend.send_batch(simple_message(), batch)
    assert result.outcome == Outcome.SENT and result.requests == 2
    folder = tmp_path / "outbox" / "spring"
    assert sorted(p.name for p in folder.iterdir()) == [
        "ann@example.org.eml",
        "bob@example.org.eml",
    ]
    ann = _read(folder / "ann@example.org.eml")
    assert ann["From"] == "The Editors <newsletter@example.org>"
    assert ann["To"] == "Ann Smith <ann@example.org>"
    assert ann["Subject"] == "The spring issue"
    assert ann["Date"] is not None and ann["Message-ID"] is not None
    assert ann["List-Unsubscribe"].startswith("<https://example.org/unsubscribe?t=")
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert ann.get_content_type() == "multipart/alternative"
    text, html = ann.iter_parts()
    assert cast(EmailMessage, text).get_content().startswith("Hi Ann,")
    assert cast(EmailMessage, html).get_content().startswith("<p>Hi Ann,</p>")
    bob = _read(folder / "bob@example.org.eml")
    assert cast(EmailMessage, bob.get_body(("plain",))).get_content().startswith("Hi there,")


def test_the_unsubscribe_link_in_the_file_verifies_for_its_recipient_only(tmp_path: Path) -> None:
    message = simple_message()
    OutboxBackend(tmp_path).send_batch(message, [recipient("ann@example.org")])
    header = _read(tmp_path / "spring" / "ann@example.org.eml")["List-Unsubscribe"]
    token = header.rstrip(">").rpartition("?t=")[2]
    request = message.unsubscribe.read({"t": token})
    assert request is not None and request.address == "ann@example.org"
    assert "ann" not in header


def test_a_rerun_replaces_files_instead_of_adding_them(tmp_path: Path) -> None:
    backend = OutboxBackend(tmp_path)
    for _ in range(2):
        backend.send_batch(simple_message(), [recipient("ann@example.org")])
    assert [p.name for p in (tmp_path / "spring").iterdir()] == ["ann@example.org.eml"]


def test_test_sends_go_to_their_own_folder(tmp_path: Path) -> None:
    OutboxBackend(tmp_path).send_batch(simple_message().as_test(), [recipient("me@example.org")])
    path = tmp_path / "spring" / "test" / "me@example.org.eml"
    assert _read(path)["Subject"] == "[TEST] The spring issue"


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("a/b@example.org", "a%2Fb@example.org.eml"),
        (".hidden@example.org", "%2Ehidden@example.org.eml"),
        ("x" * 300 + "@example.org", None),
    ],
)
def test_file_names_are_safe(address: str, name: str | None) -> None:
    made = file_name(address)
    assert "/" not in made and not made.startswith(".") and len(made) < 255
    if name is not None:
        assert made == name


def test_an_unwritable_outbox_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "outbox"
    blocker.write_text("not a folder")
    with pytest.raises(DeliveryError, match="cannot write the outbox"):
        OutboxBackend(blocker).send_batch(simple_message(), [recipient("ann@example.org")])
