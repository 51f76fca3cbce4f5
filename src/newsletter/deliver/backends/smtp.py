"""The SMTP backend: STARTTLS, login, one connection reused for the whole send.

SMTP delivers one message per recipient, so a batch is one recipient: the ledger then
knows exactly who got the issue when a connection drops halfway through a list.
The steps are driven one by one (MAIL, RCPT, DATA) because they answer different
questions: a failure before DATA means nothing was delivered, a lost answer to DATA
means the message may have been delivered.
"""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from newsletter.deliver.backends import BatchResult, Notify, Outcome
from newsletter.deliver.message import Message, RecipientLike, mime_message
from newsletter.errors import AuthError, ConfigError, DeliveryError

if TYPE_CHECKING:
    from newsletter.config import Settings

CA_FILE_ENV = "SMTP_CA_FILE"
DEFAULT_TIMEOUT = 60.0
CONNECT_ATTEMPTS = 3


class _NotSent(Exception):
    """The server did not take the message; sending it again is safe."""


class SMTPBackend:
    name = "smtp"
    unit = "message"
    max_batch_size = 1

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        ca_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        notify: Notify | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.host = host
        self.port = port
        self._username = username
        self._password = password
        self._starttls = starttls
        self._ca_file = ca_file
        self._timeout = timeout
        self._notify = notify or (lambda _message: None)
        self._sleep = sleep
        self._connection: smtplib.SMTP | None = None
        self.connections = 0
        self.requests = 0
        self.timings: dict[str, float] = {"build": 0.0, "smtp": 0.0}

    def describe(self) -> str:
        security = "STARTTLS" if self._starttls else "no TLS"
        return f"smtp ({self.host}:{self.port}, {security})"

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.quit()
            except (smtplib.SMTPException, OSError):
                self._connection.close()
            self._connection = None

    def send_batch(self, message: Message, recipients: Sequence[RecipientLike]) -> BatchResult:
        results = [self._send_one(message, recipient) for recipient in recipients]
        failed = [result for result in results if result.outcome != Outcome.SENT]
        if not failed:
            return BatchResult(Outcome.SENT, results[-1].message_id, requests=len(results))
        worst = failed[0]
        return BatchResult(worst.outcome, error=worst.error, requests=len(results))

    # -- one message

    def _send_one(self, message: Message, recipient: RecipientLike) -> BatchResult:
        started = time.perf_counter()
        mime = mime_message(message, recipient)
        data = mime.as_bytes()
        self.timings["build"] += time.perf_counter() - started
        started = time.perf_counter()
        try:
            connection = self._ready_for(message.sender.email, recipient.email)
            return self._data(connection, data, str(mime["Message-ID"]))
        except smtplib.SMTPResponseException as exc:
            return BatchResult(Outcome.FAILED, error=_reply(exc))
        finally:
            self.timings["smtp"] += time.perf_counter() - started

    def _ready_for(self, sender: str, to: str) -> smtplib.SMTP:
        """A connection that has accepted MAIL FROM and RCPT TO; reconnects a few times."""
        for attempt in range(1, CONNECT_ATTEMPTS + 1):
            try:
                connection = self._connect()
                self._envelope(connection, sender, to)
                return connection
            except _NotSent as exc:
                self._drop_connection()
                if attempt == CONNECT_ATTEMPTS:
                    raise DeliveryError(
                        f"the SMTP server did not take the message ({exc})",
                        where=f"{self.host}:{self.port}",
                        fix="nothing was sent to this recipient; send again later",
                    ) from None
                self._notify(f"{exc}; reconnecting")
                self._sleep(min(2.0**attempt, 10.0))
        raise AssertionError("unreachable")

    def _envelope(self, connection: smtplib.SMTP, sender: str, to: str) -> None:
        try:
            code, reply = connection.mail(sender)
            if code == 250:
                code, reply = connection.rcpt(to)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _NotSent(f"connection lost before the message was sent ({exc})") from None
        if code in (250, 251):
            return
        self._reset(connection)
        if 400 <= code < 500:
            raise _NotSent(f"the server deferred the message: {_text(code, reply)}")
        raise smtplib.SMTPResponseException(code, reply)

    def _data(self, connection: smtplib.SMTP, data: bytes, message_id: str) -> BatchResult:
        self.requests += 1
        try:
            code, reply = connection.data(data)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: nothing was delivered
            self._reset(connection)
            return BatchResult(Outcome.FAILED, error=_reply(exc))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop_connection()
            return BatchResult(
                Outcome.UNKNOWN,
                error=f"connection lost during DATA ({exc}): the message may have been delivered",
            )
        if code != 250:
            return BatchResult(Outcome.FAILED, error=_text(code, reply))
        return BatchResult(Outcome.SENT, message_id=message_id)

    # -- the connection

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        try:
            connection = smtplib.SMTP(self.host, self.port, timeout=self._timeout)
            connection.ehlo()
            if self._starttls:
                context = ssl.create_default_context(cafile=self._ca_file)
                connection.starttls(context=context)
                connection.ehlo()
            if self._username:
                connection.login(self._username, self._password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise AuthError(
                f"the SMTP server refused the login ({_reply(exc)})",
                where=f"{self.host}:{self.port}",
                fix="check SMTP_USERNAME and SMTP_PASSWORD in .env",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise ConfigError(
                f"the SMTP server does not offer {'STARTTLS' if self._starttls else 'AUTH'} "
                f"({exc})",
                where=f"{self.host}:{self.port}",
                fix="use the server's submission port (587), or set SMTP_STARTTLS=false "
                "only for a server on this machine",
            ) from None
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise DeliveryError(
                f"TLS with the SMTP server failed ({exc})",
                where=f"{self.host}:{self.port}",
                fix=f"check the server's certificate, or set {CA_FILE_ENV} to its CA file",
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise _NotSent(f"cannot connect ({exc})") from None
        self._connection = connection
        self.connections += 1
        return connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
        except (smtplib.SMTPException, OSError):
            self._drop_connection()


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
    return f"{exc.smtp_code} {' '.join(text.split())}".strip()


def _text(code: int, reply: bytes) -> str:
    return f"{code} {' '.join(reply.decode('utf-8', 'replace').split())}"


def create(settings: Settings, notify: Notify) -> SMTPBackend:
    secrets = settings.secrets
    if not secrets.smtp_host:
        raise settings.missing_secret(
            "SMTP_HOST", "set SMTP_PORT, SMTP_USERNAME and SMTP_PASSWORD too, as .env.example shows"
        )
    password = secrets.smtp_password.get_secret_value() if secrets.smtp_password else None
    return SMTPBackend(
        secrets.smtp_host,
        secrets.smtp_port,
        username=secrets.smtp_username,
        password=password,
        starttls=secrets.smtp_starttls,
        ca_file=secrets.smtp_ca_file,
        notify=notify,
    )
