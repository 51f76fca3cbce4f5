"""Before anything is sent: build and check the issue, refuse placeholders, sign the links.

`Preflight` is what the editor confirms; the functions here are the gates every real send,
dry run and test send passes through.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from newsletter.audience.unsubscribe import (
    LOCAL_SECRET_FILE,
    SECRET_ENV,
    UnsubscribeLinks,
    local_secret,
)
from newsletter.deliver.backends import capabilities
from newsletter.errors import ChecksFailed, UserError

# The example postal address of `newsletter init` and the sample ("Example Media, 1 Example
# Street"): the law wants the sender's real one in every message.
_EXAMPLE_WORD = re.compile(r"\bexample\b", re.IGNORECASE)

if TYPE_CHECKING:
    from newsletter.build.result import Build
    from newsletter.config import Settings
    from newsletter.deliver.suppressions import SyncReport


@dataclass
class Preflight:
    """What the editor confirms: the message, where it goes, and to how many."""

    slug: str
    subject: str
    sender: str
    backend: str
    recipients: int
    active: int
    already_sent: int
    unknown_held: int  # unknown rows left alone (resent only with --resend-unknown)
    recovered: int  # rows an interrupted run left `sending`, now `unknown`
    sync: SyncReport | None
    warnings: list[str] = field(default_factory=list)


def refuse_placeholders(settings: Settings, build: Build, backend_name: str) -> None:
    """example.org links must not reach subscribers; the outbox is a rehearsal, so it may."""
    from newsletter.issue.placeholders import is_placeholder

    if capabilities(backend_name).rehearsal or settings.file.delivery.allow_placeholders:
        return
    found = []
    articles = sum(is_placeholder(article.url) for article in build.issue.articles())
    if articles:
        found.append(f"{articles} article link(s) in issue.yaml")
    newsletter, web = settings.file.newsletter, settings.file.web
    if web.base_url is not None and _is_example_address(web.base_url):
        found.append("[web] base_url in newsletter.toml")
    for name in ("unsubscribe_url", "web_base_url"):
        value = getattr(newsletter, name)
        derived = web.base_url is not None and value.startswith(web.base_url + "/")
        if _is_example_address(value) and not derived:
            found.append(f"[newsletter] {name} in newsletter.toml")
    sender = settings.file.sender
    for name, address in (("email", sender.email), ("reply_to", sender.reply_to or "")):
        if _is_example_host(address.rpartition("@")[2]):
            found.append(f"[sender] {name} in newsletter.toml")
    if _EXAMPLE_WORD.search(sender.postal_address):
        found.append("[sender] postal_address in newsletter.toml")
    if found:
        raise ChecksFailed(
            f"issue {build.slug!r} still has example placeholders: {', '.join(found)}",
            fix="replace them with real addresses, or rehearse with `--backend outbox`; "
            "nothing was sent",
        )


def _is_example_address(url: str) -> bool:
    return _is_example_host(urlsplit(url).hostname or "")


def _is_example_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    reserved = ("example.org", "example.com", "example.net")  # RFC 2606
    return (
        host in reserved
        or host.endswith(tuple(f".{name}" for name in reserved))
        or (host.endswith((".example", ".invalid", ".test", ".localhost")))
    )


def build_for_sending(settings: Settings, slug: str, *, keep: bool = True) -> Build:
    """Build the issue now (the build on disk is replaced, if `keep`); refuse one that fails
    its checks."""
    from newsletter.build.output import make_build, write_build

    build = make_build(settings, slug)
    if keep:
        write_build(settings, build)
    refuse_failing_checks(build, f"fix them and see `newsletter check {slug}`; nothing was sent")
    return build


def refuse_failing_checks(build: Build, fix: str) -> None:
    """One line for a build with errors: the first of them, and how many more."""
    from newsletter.build.checks import errors as errors_in

    errors = errors_in(build.findings)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ChecksFailed(
            f"issue {build.slug!r} fails its checks: [{errors[0].code}] {errors[0].message}{more}",
            fix=fix,
        )


def unsubscribe_links(
    settings: Settings, backend: str, warnings: list[str], *, rehearsal: bool = False
) -> UnsubscribeLinks:
    """The list's link signer; without a secret only the outbox (or a rehearsal) may go on."""
    newsletter = settings.file.newsletter
    secret = settings.secrets.unsubscribe_secret
    if secret is not None:
        return UnsubscribeLinks(
            newsletter.unsubscribe_url, newsletter.list_name, secret.get_secret_value()
        )
    # A setting, not the issue: the cron run stops at the first issue instead of every one.
    missing = settings.missing_secret(
        SECRET_ENV,
        "unsubscribe links are signed with it; use a long random string, e.g. "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
    )
    writes_files = capabilities(backend).rehearsal
    if not writes_files and not rehearsal:
        raise missing
    warnings.append(
        missing.line()
        if not writes_files
        else f"{SECRET_ENV} is not set: the outbox's unsubscribe links are signed with this "
        f"workspace's own key in {LOCAL_SECRET_FILE} (set it in .env before a real send, "
        "the same on every machine that sends or serves the list)"
    )
    try:
        key = local_secret(settings.workspace)
    except UserError:
        if not rehearsal:
            raise
        key = secrets.token_hex(32)  # a dry run on a read-only workspace: no link is kept
    return UnsubscribeLinks(newsletter.unsubscribe_url, newsletter.list_name, key)
