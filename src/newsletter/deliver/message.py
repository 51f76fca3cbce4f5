"""The message every subscriber gets: one built issue, personalised per recipient.

`Message` holds what is the same for everyone (subject, sender, both parts); `values` gives
one recipient's merge-tag values and `personalize` the finished message for backends that
send one message per recipient (SMTP, outbox); SendGrid's request body is built from it in
`deliver.backends.sendgrid.request`.
"""

from __future__ import annotations

import email.policy
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid
from typing import TYPE_CHECKING, Protocol

from newsletter.deliver.backends.sendgrid.limits import MAX_CATEGORIES, MAX_CATEGORY_CHARS
from newsletter.errors import UserError
from newsletter.lines import is_multiline
from newsletter.list_headers import ONE_CLICK, list_unsubscribe
from newsletter.merge_tags import fill, neutralise_markers

if TYPE_CHECKING:
    from newsletter.audience.unsubscribe import UnsubscribeLinks
    from newsletter.build.result import Build
    from newsletter.config import Settings

FALLBACK_FIRST_NAME = "there"
# A name this long is a mistake; capped, `To:` stays far inside RFC 5322's 998 octets.
MAX_DISPLAY_NAME_CHARS = 200
TEST_SUBJECT_PREFIX = "[TEST] "

MAX_FIRST_NAME_CHARS = 100

# Folding at 78 turns a long List-Unsubscribe URL into RFC 2047 words mail clients cannot
# use; 998 is the hard limit of a header line.
MIME_POLICY = email.policy.SMTP.clone(max_line_length=998)
# Bodies are quoted-printable in lines of at most 76 characters (RFC 2045); longer ones are
# a spam signal (SpamAssassin's MIME_QP_LONG_LINE) and can be cut by old relays.
BODY_POLICY = email.policy.SMTP.clone(max_line_length=76)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_IN_NAMES = re.compile(r"[\x00-\x1f\x7f;,\"]")
# A name `display_name` leaves as it is: words of printable ASCII but ; , and quotes, one
# space apart.
_FIT_NAME = re.compile(r"[!#-+\--:<-~]+(?: [!#-+\--:<-~]+)*")


class RecipientLike(Protocol):
    """What a message needs of a recipient (ledger.Recipient has it)."""

    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def first_name(self) -> str | None: ...


def check_header_value(field_name: str, value: str) -> str:
    """`value` if it is safe in a mail header, else a UserError naming the field."""
    if is_multiline(value):
        raise UserError(
            f"{field_name} contains a line break ({value[:60]!r})",
            fix="a header value must be a single line; remove the line break",
        )
    if _CONTROL.search(value):
        raise UserError(
            f"{field_name} contains a control character ({value[:60]!r})",
            fix="remove it",
        )
    return value


def _check_categories(categories: Sequence[str]) -> None:
    where = "newsletter.toml [delivery] categories"
    if len(categories) > MAX_CATEGORIES or len(set(categories)) != len(categories):
        raise UserError(
            f"{len(categories)} categories, some repeated or more than {MAX_CATEGORIES}",
            where=where,
            fix=f"SendGrid takes at most {MAX_CATEGORIES} distinct categories, and every "
            "message also carries its issue's slug: list at most "
            f"{MAX_CATEGORIES - 1} other ones",
        )
    for category in categories:
        if not category or not category.isascii() or len(category) > MAX_CATEGORY_CHARS:
            raise UserError(
                f"category {category!r} is not 1 to {MAX_CATEGORY_CHARS} ASCII characters",
                where=where,
                fix="SendGrid refuses it; rename it",
            )


def display_name(name: str | None) -> str | None:
    """A recipient's name fit for `To:` and SendGrid's `to.name` (no ; , quotes or CR/LF)."""
    if not name:
        return None
    if len(name) <= MAX_DISPLAY_NAME_CHARS and _FIT_NAME.fullmatch(name):  # already fit
        return name
    cleaned = " ".join(_NOT_IN_NAMES.sub(" ", name).split())[:MAX_DISPLAY_NAME_CHARS]
    return cleaned.strip() or None


def first_name_of(recipient: RecipientLike) -> str:
    raw = recipient.first_name or _first_name_in(recipient.name or "")
    cleaned = " ".join(_CONTROL.sub(" ", raw).split())[:MAX_FIRST_NAME_CHARS]
    return cleaned or FALLBACK_FIRST_NAME


# Titles before a name, and words that make a name an organisation's (lower case, no dot).
_HONORIFICS = frozenset(
    {
        "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau", "fr",
        "hr", "mme", "mlle", "m", "monsieur", "madame", "sr", "sra", "srta", "don", "dona",
        "signor", "signora", "sig", "dott", "ing", "mag",
    }
)  # fmt: skip
_ORGANISATION_WORDS = frozenset(
    {
        "gmbh", "ag", "kg", "ug", "inc", "ltd", "llc", "llp", "plc", "co", "corp", "sa",
        "sas", "sarl", "srl", "spa", "bv", "nv", "oy", "ab", "as", "team", "company",
        "group", "gruppe", "verlag", "media", "news",
    }
)  # fmt: skip


def _first_name_in(name: str) -> str:
    """The given name of a plain full name ("Kim Lee" -> Kim, "Dr. Kim Lee" -> Kim).

    Only when it is clearly one: no commas or semicolons (whose order of names is unknown),
    not an organisation ("ACME GmbH"), not initials ("J. R. R. Tolkien"), and a word of
    letters (hyphens and apostrophes allowed); otherwise the fallback greets.
    """
    if any(mark in name for mark in ",;@&"):
        return ""
    words = name.split()
    bare = [word.rstrip(".").lower() for word in words]
    if any(word in _ORGANISATION_WORDS for word in bare):
        return ""
    while words and bare[0] in _HONORIFICS:
        words, bare = words[1:], bare[1:]
    if len(words) < 1 or len(bare[0]) < 2:  # nothing left, or an initial first
        return ""
    first = words[0]
    if not first.replace("-", "").replace("'", "").replace("’", "").isalpha():
        return ""
    return first.capitalize() if first.isupper() else first


@dataclass(frozen=True)
class Address:
    email: str
    name: str | None = None

    def formatted(self) -> str:
        local, _, domain = self.email.rpartition("@")
        if not local.isascii():
            raise UserError(
                f"{self.email}: a non-ASCII name before the @ needs SMTPUTF8, which this sender"
                " does not use",
                fix=f"remove it with `newsletter subscribers remove {self.email}`",
            )
        ascii_domain = domain if domain.isascii() else domain.encode("idna").decode("ascii")
        return formataddr((self.name or "", f"{local}@{ascii_domain}"), charset="utf-8")

    def readable(self) -> str:
        """As a person reads it: `Name <address>` (not RFC 2047-encoded, for screens)."""
        return f"{self.name} <{self.email}>" if self.name else self.email

    def as_sendgrid(self) -> dict[str, str]:
        return {"email": self.email, "name": self.name} if self.name else {"email": self.email}


@dataclass(frozen=True)
class Personalized:
    """One recipient's finished message."""

    to: Address
    subject: str
    html: str
    text: str
    headers: dict[str, str]


@dataclass(frozen=True)
class Message:
    issue: str
    subject: str
    sender: Address
    reply_to: str | None
    html: str
    text: str
    list_name: str
    list_domain: str
    unsubscribe: UnsubscribeLinks
    categories: tuple[str, ...] = ()
    asm_group_id: int | None = None
    test: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # SendGrid holds the message until then (unix seconds), in a batch that can be cancelled.
    send_at: int | None = None
    batch_id: str | None = None

    def __post_init__(self) -> None:
        check_header_value("the subject", self.subject)
        check_header_value("the sender name", self.sender.name or "")
        if len(self.sender.name or "") > MAX_DISPLAY_NAME_CHARS:
            raise UserError(
                f"the sender name is {len(self.sender.name or ''):,} characters long",
                where="newsletter.toml [sender] name",
                fix=f"shorten it to at most {MAX_DISPLAY_NAME_CHARS} characters",
            )
        check_header_value("the sender address", self.sender.email)
        check_header_value("reply_to", self.reply_to or "")
        for name, value in self.headers.items():
            check_header_value(f"header {name}", value)
        _check_categories(self.categories)
        if not self.sender.email.isascii():
            raise UserError(
                f"sender address {self.sender.email!r} is not ASCII",
                where="newsletter.toml [sender] email",
                fix="SendGrid's from field does not support Unicode",
            )

    def as_test(self) -> Message:
        """The same message marked as a test in its subject (and in custom_args), and kept
        out of the issue's own category so SendGrid's statistics count real sends only."""
        categories = tuple(category for category in self.categories if category != self.issue)
        return replace(
            self, subject=TEST_SUBJECT_PREFIX + self.subject, test=True, categories=categories
        )

    @property
    def custom_args(self) -> dict[str, str]:
        args = {"issue": self.issue}
        if self.test:
            args["test"] = "true"
        return args

    def values(self, recipient: RecipientLike) -> dict[str, str]:
        """The merge-tag values of one recipient, as plain text."""
        # A subscriber's own data is content too: it must never become a merge tag.
        return {
            "first_name": neutralise_markers(first_name_of(recipient)),
            "email": neutralise_markers(recipient.email),
            "unsubscribe_url": self.unsubscribe.url(recipient.email, self.issue),
        }

    def recipient_headers(self, unsubscribe_url: str) -> dict[str, str]:
        return {
            "List-Unsubscribe": list_unsubscribe(unsubscribe_url),
            "List-Unsubscribe-Post": ONE_CLICK,
        }

    def personalize(self, recipient: RecipientLike) -> Personalized:
        values = self.values(recipient)
        escaped = {name: html.escape(value) for name, value in values.items()}
        to = Address(recipient.email, display_name(recipient.name))
        check_header_value("a recipient address", to.email)
        return Personalized(
            to=to,
            subject=self.subject,
            html=fill(self.html, escaped),
            text=fill(self.text, values),
            headers={**self.headers, **self.recipient_headers(values["unsubscribe_url"])},
        )


def mime_message(message: Message, recipient: RecipientLike) -> EmailMessage:
    """One recipient's message as a MIME multipart/alternative (text, then HTML)."""
    finished = message.personalize(recipient)
    mime = EmailMessage(policy=BODY_POLICY)  # the bodies are encoded with it, below
    mime["From"] = message.sender.formatted()
    mime["To"] = finished.to.formatted()
    mime["Subject"] = finished.subject
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = make_msgid(domain=message.list_domain)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["List-Id"] = f"<{message.list_name}.{message.list_domain}>"
    for name, value in finished.headers.items():
        mime[name] = value
    mime["X-Newsletter-Issue"] = message.issue + (" (test)" if message.test else "")
    qp = "quoted-printable"
    mime.set_content(finished.text, subtype="plain", charset="utf-8", cte=qp)
    mime.add_alternative(finished.html, subtype="html", charset="utf-8", cte=qp)
    mime.policy = MIME_POLICY  # headers are folded when the message is written
    return mime


def issue_categories(configured: Sequence[str], slug: str) -> tuple[str, ...]:
    """The configured categories and the issue's slug: SendGrid's statistics per issue
    (`report --from-sendgrid`) are read by that category."""
    return tuple(configured) if slug in configured else (*configured, slug)


def message_for(settings: Settings, build: Build, unsubscribe: UnsubscribeLinks) -> Message:
    """The message of a successful build, with the workspace's sender and list settings."""
    sender = settings.file.sender
    delivery = settings.file.delivery
    domain = sender.email.rpartition("@")[2] or "localhost"
    return Message(
        issue=build.slug,
        subject=build.issue.subject,
        sender=Address(sender.email, sender.name or None),
        reply_to=sender.reply_to,
        html=build.rendered.email_html,
        text=build.rendered.text,
        list_name=settings.file.newsletter.list_name,
        list_domain=domain,
        unsubscribe=unsubscribe,
        categories=issue_categories(delivery.categories, build.slug),
        asm_group_id=delivery.asm_group_id,
    )
