"""The SMTP backend against a real aiosmtpd server on 127.0.0.1: STARTTLS, login, reuse."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from newsletter.deliver.backends import Outcome
from newsletter.deliver.backends.smtp import SMTPBackend
from newsletter.errors import AuthError, DeliveryError
from tests._workspace import recipient, simple_message

USER, PASSWORD = "editor", "correct horse"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@dataclass
class Mailbox:
    """The handler: keeps every message; refuses recipients at refused.example.org."""

    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    sessions: set[int] = field(default_factory=set)
    tls_sessions: int = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.endswith("@refused.example.org"):
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.sessions.add(id(session))
        if session.ssl is not None:
            self.tls_sessions += 1
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def parsed(self, index: int) -> EmailMessage:
        return cast(
            EmailMessage, message_from_bytes(self.messages[index][2], policy=policy.default)
        )


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: the server answers 535 itself (handled=True would leave it silent).
    return AuthResult(success=ok, handled=False)


@dataclass
class Server:
    host: str
    port: int
    ca_file: Path
    mailbox: Mailbox


@pytest.fixture
def smtp_server(tmp_path: Path) -> Iterator[Server]:
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    port = _free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield Server("127.0.0.1", port, cert, mailbox)
    finally:
        controller.stop()


def backend_for(server: Server, **kwargs: Any) -> SMTPBackend:
    options: dict[str, Any] = {
        "username": USER,
        "password": PASSWORD,
        "ca_file": str(server.ca_file),
        "sleep": lambda _seconds: None,
        **kwargs,
    }
    return SMTPBackend(server.host, server.port, **options)


def test_messages_go_over_starttls_with_login_on_one_connection(smtp_server: Server) -> None:
    backend = backend_for(smtp_server)
    message = simple_message()
    try:
        for i in range(3):
            result = backend.send_batch(message, [recipient(f"r{i}@example.org", first_name="Al")])
            assert result.outcome == Outcome.SENT and result.message_id
    finally:
        backend.close()
    mailbox = smtp_server.mailbox
    assert [to for _, to, _ in mailbox.messages] == [[f"r{i}@example.org"] for i in range(3)]
    assert mailbox.messages[0][0] == "newsletter@example.org"
    assert mailbox.tls_sessions == 3
    assert len(mailbox.sessions) == 1, "one connection for the whole send"
    assert backend.connections == 1


def test_the_message_carries_the_same_headers_as_the_other_backends(smtp_server: Server) -> None:
    backend = backend_for(smtp_server)
    try:
        backend.send_batch(simple_message(), [recipient("ann@example.org", "Ann Smith", "Ann")])
    finally:
        backend.close()
    parsed = smtp_server.mailbox.parsed(0)
    assert parsed["To"] == "Ann Smith <ann@example.org>"
    assert parsed["Subject"] == "The spring issue"
    assert parsed["List-Unsubscribe"].startswith("<https://example.org/unsubscribe?t=")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Message-ID"] and parsed["Date"]
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]


def test_a_refused_recipient_fails_alone_and_the_connection_goes_on(smtp_server: Server) -> None:
    backend = backend_for(smtp_server)
    message = simple_message()
    try:
        refused = backend.send_batch(message, [recipient("nobody@refused.example.org")])
        accepted = backend.send_batch(message, [recipient("ann@example.org")])
    finally:
        backend.close()
    assert refused.outcome == Outcome.FAILED
    assert refused.error == "550 5.1.1 no such user"
    assert accepted.outcome == Outcome.SENT
    assert len(smtp_server.mailbox.messages) == 1
    assert backend.connections == 1


def test_a_wrong_password_stops_with_an_auth_error(smtp_server: Server) -> None:
    backend = backend_for(smtp_server, password="wrong")
    with pytest.raises(AuthError) as caught:
        backend.send_batch(simple_message(), [recipient("ann@example.org")])
    assert caught.value.exit_code == 4
    assert caught.value.line().startswith(
        f"127.0.0.1:{smtp_server.port}: the SMTP server refused the login (535"
    )
    assert "wrong" not in caught.value.line()


def test_an_untrusted_certificate_is_refused(smtp_server: Server) -> None:
    backend = backend_for(smtp_server, ca_file=None)
    with pytest.raises(DeliveryError, match="TLS with the SMTP server failed"):
        backend.send_batch(simple_message(), [recipient("ann@example.org")])
    assert smtp_server.mailbox.messages == []


def test_no_server_gives_up_after_a_few_attempts() -> None:
    backend = SMTPBackend("127.0.0.1", _free_port(), sleep=lambda _seconds: None)
    with pytest.raises(DeliveryError) as caught:
        backend.send_batch(simple_message(), [recipient("ann@example.org")])
    assert "the SMTP server did not take the message (cannot connect" in caught.value.line()


def test_a_dropped_connection_is_reopened_for_the_next_message(smtp_server: Server) -> None:
    backend = backend_for(smtp_server)
    message = simple_message()
    try:
        assert backend.send_batch(message, [recipient("a@example.org")]).outcome == Outcome.SENT
        assert backend._connection is not None
        backend._connection.sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]
        assert backend.send_batch(message, [recipient("b@example.org")]).outcome == Outcome.SENT
    finally:
        backend.close()
    assert backend.connections == 2
    assert [to for _, to, _ in smtp_server.mailbox.messages] == [
        ["a@example.org"],
        ["b@example.org"],
    ]
