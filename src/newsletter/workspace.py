"""Scaffolding: a new workspace (`init`) and a new issue (`new`)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from newsletter.config import CONFIG_FILE, Settings
from newsletter.errors import UserError
from newsletter.issue.model import ISSUE_FILE, check_slug

ENV_EXAMPLE = """\
# Copy to .env (never commit it) and fill in what you use.
# SendGrid: the key needs the mail.send scope (and suppressions read for `subscribers sync`).
SENDGRID_API_KEY=
# Base URL of the SendGrid API; change only for a staging server or a local stand-in.
SENDGRID_API_HOST=https://api.sendgrid.com
# Secret for signing one-click unsubscribe links (any long random string).
NEWSLETTER_UNSUBSCRIBE_SECRET=
# SendGrid's signed event webhook (`newsletter serve`): the verification key SendGrid shows
# under Mail Settings > Event Webhook once signing is on.
SENDGRID_WEBHOOK_PUBLIC_KEY=
# SMTP backend (used with --backend smtp).
SMTP_HOST=
SMTP_PORT=587
SMTP_USERNAME=
SMTP_PASSWORD=
SMTP_STARTTLS=true
# CA bundle to trust for the SMTP server's certificate (a private CA); empty = the system's.
SMTP_CA_FILE=
# Workspace to use when running outside it (e.g. from cron).
NEWSLETTER_WORKSPACE=
# The database on a PostgreSQL server instead of newsletter.db, for a list shared between
# machines (see README "PostgreSQL"; percent-encode @ : / in the password).
# DATABASE_URL=postgresql://USER:PASSWORD@HOST:5432/DATABASE
"""

GITIGNORE = """\
.env
build/
outbox/
logs/
newsletter.db
newsletter.db-*
.newsletter-*.lock
.newsletter-*.owner
.newsletter-secret
"""

CONFIG_EXAMPLE = """\
# Settings for this workspace. Secrets (SENDGRID_API_KEY ...) go in .env, see .env.example.

[newsletter]
name = "My Newsletter"
list_name = "my-newsletter"
why = "You are receiving this email because you subscribed to My Newsletter."
language = "en"
template = "newsletter"                          # templates/<template>.mjml.j2 and .txt.j2
# Made from [web] base_url unless set here (e.g. to pages you host elsewhere):
# web_base_url = "https://example.org/archive"   # each issue's web version: <this>/<slug>/
# unsubscribe_url = "https://example.org/unsubscribe"
# subscribe_url = "https://example.org/subscribe"

[web]
# Where `newsletter serve` is reachable from the internet (behind your reverse proxy):
# the unsubscribe, web-version and signup links are made from it.
base_url = "https://example.org"
# trusted_proxies = ["127.0.0.1", "::1"]         # whose X-Forwarded-For/-Proto to believe
# allowed_hosts = []                             # more Host names to answer besides base_url's
privacy_note = "We use your address only to send you this newsletter. Unsubscribe with one click."

[sender]
name = "My Newsletter"
email = "newsletter@example.org"
reply_to = "editors@example.org"
postal_address = "Example Media, 1 Example Street, 10115 Berlin, Germany"

[brand]
primary_color = "#0b4f8a"
text_color = "#1f2933"
muted_color = "#5f6b7a"
background_color = "#f3f4f6"
font_family = "Helvetica, Arial, sans-serif"
# logo_url = "https://example.org/logo.png"
# logo_alt = "My Newsletter"
# logo_width = 160

[links]
utm_source = "newsletter"
utm_medium = "email"
utm_campaign = "{slug}"

[delivery]
backend = "auto"          # auto = sendgrid when SENDGRID_API_KEY is set, else outbox
database = "newsletter.db"
batch_size = 1000
# asm_group_id = 12345    # SendGrid unsubscribe group
categories = ["newsletter"]
max_lateness_hours = 6    # cron does not send an issue later than this; send it by hand
# timezone = "Europe/Berlin"  # for `newsletter schedule --at` without --tz (default: the system's)
via_sendgrid = false      # true: `send --due` hands issues to SendGrid ahead, with send_at
sync_suppressions = true  # false: skip SendGrid's suppression lists before sending
"""

ISSUE_SKELETON = """\
# One edition of the newsletter. `newsletter add {slug} URL...` appends stories;
# edit freely: order, wording and comments are kept.
subject: {subject}
preheader: ""      # 35-140 characters shown after the subject in the inbox
date: {date}
intro: ""
sections:
  - title: Top story
    layout: lead    # lead | list | grid
    articles: []
"""


TEMPLATES_README = """\
# Template overrides

A file here replaces the built-in template of the same name; the others stay built-in
and get the fixes of each new release. `newsletter templates list` shows them all,
`newsletter templates eject footer` copies one here to edit, `newsletter templates diff`
shows how your copies differ from the current built-ins.
"""


def init_workspace(directory: Path) -> list[Path]:
    """Create what is missing; a file already there (your own template, say) is kept."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / CONFIG_FILE
    if config.exists():
        raise UserError(
            "a workspace already exists here", where=config, fix="choose an empty directory"
        )
    created = [
        path
        for path, text in (
            (config, CONFIG_EXAMPLE),
            (directory / ".env.example", ENV_EXAMPLE),
            (directory / ".gitignore", GITIGNORE),
        )
        if _write_new(path, text)
    ]
    if not (directory / "issues").exists():
        (directory / "issues").mkdir()
        created.append(directory / "issues")
    templates = directory / "templates"
    if not templates.exists():  # overrides only: the built-ins stay up to date with releases
        templates.mkdir()
        _write_new(templates / "README.md", TEMPLATES_README)
        created.append(templates)
    return created


def _write_new(path: Path, text: str) -> bool:
    try:
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True


def new_issue(settings: Settings, slug: str, subject: str, today: dt.date | None = None) -> Path:
    check_slug(slug)
    path = settings.issue_dir(slug) / ISSUE_FILE
    if path.exists():
        raise UserError("the issue already exists", where=path, fix="pick another name")
    path.parent.mkdir(parents=True, exist_ok=True)
    quoted = '"' + subject.replace("\\", "\\\\").replace('"', '\\"') + '"'
    date = date_in_slug(slug) or today or dt.date.today()
    path.write_text(ISSUE_SKELETON.format(slug=slug, subject=quoted, date=date), encoding="utf-8")
    return path


def looks_dated(slug: str) -> bool:
    """The slug starts like a date (YYYY-MM-DD), real or not."""
    return bool(re.match(r"\d{4}-\d{2}-\d{2}(?:$|-)", slug))


def date_in_slug(slug: str) -> dt.date | None:
    """The edition's date when the slug starts with one (2026-12-08, 2026-12-08-extra)."""
    try:
        return dt.date.fromisoformat(slug[:10]) if len(slug) >= 10 else None
    except ValueError:
        return None
