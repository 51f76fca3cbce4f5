"""Settings: newsletter.toml in the workspace, secrets from the environment or .env."""

from __future__ import annotations

import os
import string
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from newsletter.dotenv_file import read_dotenv
from newsletter.errors import ConfigError
from newsletter.files import read_utf8
from newsletter.lines import is_multiline
from newsletter.validation_words import plain_message

if TYPE_CHECKING:
    from newsletter.db.target import Target

CONFIG_FILE = "newsletter.toml"
WORKSPACE_ENV = "NEWSLETTER_WORKSPACE"
DEFAULT_SENDGRID_HOST = "https://api.sendgrid.com"
MIN_CONCURRENCY, MAX_CONCURRENCY = 1, 64


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NewsletterSection(_Section):
    name: str = "Newsletter"
    list_name: str = "newsletter"
    why: str = "You are receiving this email because you subscribed to our newsletter."
    web_base_url: str = "https://example.org/archive"
    unsubscribe_url: str = "https://example.org/unsubscribe"
    subscribe_url: str = "https://example.org/subscribe"
    language: str = "en"
    template: str = "newsletter"


# The pages of `newsletter serve`, under [web] base_url: what each link setting defaults to.
WEB_PATHS = {
    "web_base_url": "/archive",
    "unsubscribe_url": "/unsubscribe",
    "subscribe_url": "/subscribe",
}


class WebSection(_Section):
    base_url: str | None = None
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    allowed_hosts: list[str] = Field(default_factory=list)
    privacy_note: str = (
        "We use your address only to send you this newsletter. "
        "Every issue has a one-click unsubscribe link."
    )
    signups_per_hour_per_ip: int = Field(10, ge=1, le=10_000)
    signups_per_hour_per_address: int = Field(3, ge=1, le=100)

    @field_validator("base_url")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise ValueError(f"{value!r} is not an http(s) address such as https://example.org")
        return value.rstrip("/")


class SenderSection(_Section):
    name: str = "The Newsletter Team"
    email: str = "newsletter@example.org"
    reply_to: str | None = None
    postal_address: str = "Example Media, 1 Example Street, 10115 Berlin, Germany"

    @field_validator("name", "email", "reply_to", "postal_address")
    @classmethod
    def _single_line(cls, value: str | None) -> str | None:
        if value is not None and is_multiline(value):
            raise ValueError("must be a single line (no line breaks)")
        return value

    @field_validator("email", "reply_to")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        # Checked here, not at the first send: SendGrid refuses every batch of a bad one.
        if value is None:
            return None
        from email_validator import EmailNotValidError, validate_email

        try:
            validate_email(value, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not an email address ({exc})") from None
        return value


class BrandSection(_Section):
    primary_color: str = Field("#0b4f8a", pattern=r"^#[0-9a-fA-F]{6}$")
    text_color: str = Field("#1f2933", pattern=r"^#[0-9a-fA-F]{6}$")
    muted_color: str = Field("#5f6b7a", pattern=r"^#[0-9a-fA-F]{6}$")
    background_color: str = Field("#f3f4f6", pattern=r"^#[0-9a-fA-F]{6}$")
    font_family: str = "Helvetica, Arial, sans-serif"
    logo_url: str | None = None
    logo_alt: str | None = None
    logo_width: int = Field(160, ge=40, le=600)


class LinksSection(_Section):
    utm_source: str | None = "newsletter"
    utm_medium: str | None = "email"
    utm_campaign: str | None = "{slug}"

    @field_validator("utm_campaign")
    @classmethod
    def _only_slug_placeholder(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        except ValueError as exc:
            raise ValueError(f"{exc}; write {{slug}} for the issue's name") from None
        unknown = sorted(names - {"slug"})
        if unknown:
            raise ValueError(f"unknown placeholder {{{unknown[0]}}}; the only one is {{slug}}")
        return value


class DeliverySection(_Section):
    backend: str = "auto"
    database: str = "newsletter.db"
    batch_size: int = Field(1000, ge=1, le=1000)
    # Requests in flight at once (SendGrid only; the outbox and SMTP send one at a time).
    concurrency: int = 8
    asm_group_id: int | None = None
    categories: list[str] = Field(default_factory=lambda: ["newsletter"])
    max_lateness_hours: float = Field(6.0, gt=0)
    timezone: str | None = None
    via_sendgrid: bool = False
    # false: `send` (and cron) skip SendGrid's suppression lists, for a key without
    # Suppressions: Read; run `newsletter subscribers sync` another way then.
    sync_suppressions: bool = True
    # Rehearsals against a stand-in server may send example.org placeholder links.
    allow_placeholders: bool = False

    @field_validator("concurrency")
    @classmethod
    def _in_flight(cls, value: int) -> int:
        if not MIN_CONCURRENCY <= value <= MAX_CONCURRENCY:
            raise ValueError(
                f"must be {MIN_CONCURRENCY} to {MAX_CONCURRENCY} requests in flight at once, "
                f"not {value} (1 sends one batch at a time)"
            )
        return value


class PathsSection(_Section):
    issues: str = "issues"
    templates: str = "templates"
    build: str = "build"
    outbox: str = "outbox"
    logs: str = "logs"


class FileSettings(_Section):
    newsletter: NewsletterSection = NewsletterSection()
    web: WebSection = WebSection()
    sender: SenderSection = SenderSection()
    brand: BrandSection = BrandSection()
    links: LinksSection = LinksSection()
    delivery: DeliverySection = DeliverySection()
    paths: PathsSection = PathsSection()

    @model_validator(mode="before")
    @classmethod
    def _links_from_web_base(cls, raw: Any) -> Any:
        """Links not set in [newsletter] are the pages of `newsletter serve` at base_url."""
        if not isinstance(raw, dict) or not isinstance(raw.get("web"), dict):
            return raw
        base = raw["web"].get("base_url")
        newsletter = raw.get("newsletter", {})
        if not isinstance(base, str) or not isinstance(newsletter, dict):
            return raw
        base = base.rstrip("/")
        derived = {key: base + path for key, path in WEB_PATHS.items() if key not in newsletter}
        return {**raw, "newsletter": {**newsletter, **derived}}


class Secrets(BaseModel):
    """Values that come only from the environment; SecretStr keeps them out of reprs."""

    model_config = ConfigDict(frozen=True)

    sendgrid_api_key: SecretStr | None = None
    sendgrid_api_host: str = DEFAULT_SENDGRID_HOST
    unsubscribe_secret: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ca_file: str | None = None
    # SendGrid's signed event webhook: the public key it shows (base64 DER), not a secret,
    # but read from the environment beside the others.
    sendgrid_webhook_public_key: str | None = None
    # The workspace database on a server (postgresql://...) or elsewhere (sqlite:///...);
    # secret because it may hold a password. `database_url_source`: where it was set.
    database_url: SecretStr | None = None
    database_url_source: str = "the environment"


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    workspace: Path
    file: FileSettings
    secrets: Secrets

    def path(self, name: str) -> Path:
        return self.workspace / str(getattr(self.file.paths, name))

    @property
    def database_path(self) -> Path:
        """The SQLite file of [delivery] database (used when DATABASE_URL is not set)."""
        return self.workspace / self.file.delivery.database

    @property
    def database(self) -> Target:
        """Where the workspace database is: DATABASE_URL when set, else the SQLite file."""
        from newsletter.db.target import parse_target  # not for commands without a database

        url = self.secrets.database_url
        if url is None:
            return self.database_path
        return parse_target(
            url.get_secret_value(), workspace=self.workspace, where=self.secrets.database_url_source
        )

    def issue_dir(self, slug: str) -> Path:
        return self.path("issues") / slug

    def build_dir(self, slug: str) -> Path:
        return self.path("build") / slug

    @property
    def env_file(self) -> Path:
        return self.workspace / ".env"

    def missing_secret(self, name: str, fix: str) -> ConfigError:
        """`name` is not set: say where it goes, naming a .env that exists or is to be made."""
        if self.env_file.is_file():
            return ConfigError(
                f"{name} is not set", where=self.env_file, fix=f"add {name}=... to it; {fix}"
            )
        return ConfigError(
            f"{name} is not set",
            where=f"the environment (there is no {self.env_file})",
            fix=f"create {self.env_file} from .env.example with {name}=..., "
            f"or export {name}; {fix}",
        )


def _check_workspace_dir(root: Path, where: str) -> Path:
    if not root.is_dir():
        raise ConfigError(
            f"{root} is not a directory", where=where, fix="give the workspace's directory"
        )
    return root


def find_workspace(start: Path | None = None) -> Path:
    """The nearest directory holding newsletter.toml, from $NEWSLETTER_WORKSPACE or upwards."""
    if env := os.environ.get(WORKSPACE_ENV):
        root = Path(env).resolve()
        if not (root / CONFIG_FILE).is_file():
            raise ConfigError(
                f"no {CONFIG_FILE} in {root}",
                where=WORKSPACE_ENV,
                fix="point it at a workspace or run `newsletter init DIR`",
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE} found in {here} or its parents",
        fix="run the command inside a workspace, or create one with `newsletter init DIR`",
    )


def load_settings(workspace: Path | None = None, environ: dict[str, str] | None = None) -> Settings:
    root = (
        _check_workspace_dir(workspace.resolve(), "--workspace") if workspace else find_workspace()
    )
    config_path = root / CONFIG_FILE
    file_settings = _load_file(config_path)
    process = dict(os.environ if environ is None else environ)
    dotenv = read_dotenv(root / ".env")
    env = {**dotenv, **process}
    where = {name: "the environment" if name in process else root / ".env" for name in env}
    return Settings(workspace=root, file=file_settings, secrets=_secrets_from(env, where))


def _load_file(path: Path) -> FileSettings:
    text = read_utf8(path, ConfigError, "create it with `newsletter init`")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"not valid TOML ({exc})", where=path, fix="correct the syntax at that line"
        ) from None
    try:
        return FileSettings.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise ConfigError(
            f"[{field}] {_describe(error)}",
            where=path,
            fix="see the commented example written by `newsletter init`",
        ) from None


def _describe(error: Any) -> str:
    if error["type"] == "string_pattern_mismatch":  # only the brand colours have a pattern
        return f"{error['input']!r} is not a colour: write it as #rrggbb, e.g. #0b4f8a"
    return plain_message(error)


def _secrets_from(env: dict[str, str], where: dict[str, str | Path]) -> Secrets:
    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    def secret(name: str) -> SecretStr | None:
        value = get(name)
        return SecretStr(value) if value else None

    port = get("SMTP_PORT") or "587"
    if not port.isdigit():
        # The value is not shown: a password pasted into the wrong line must not be printed.
        raise ConfigError(
            "SMTP_PORT is not a port number",
            where=where["SMTP_PORT"],
            fix="write the number alone, e.g. SMTP_PORT=587",
        )
    key = secret("SENDGRID_API_KEY")
    if key is not None:
        _check_key(key, where["SENDGRID_API_KEY"])
    host = get("SENDGRID_API_HOST")
    if host is not None:
        _check_host(host, where["SENDGRID_API_HOST"])
    database_url = secret("DATABASE_URL")
    database_url_source = str(where.get("DATABASE_URL", "the environment"))
    if database_url is not None:  # refused now, with where it was set, if it cannot be read
        from newsletter.db.target import parse_target

        parse_target(
            database_url.get_secret_value(), workspace=Path("."), where=database_url_source
        )
    return Secrets(
        database_url=database_url,
        database_url_source=database_url_source,
        sendgrid_api_key=key,
        sendgrid_api_host=(host or DEFAULT_SENDGRID_HOST).rstrip("/"),
        unsubscribe_secret=secret("NEWSLETTER_UNSUBSCRIBE_SECRET"),
        smtp_host=get("SMTP_HOST"),
        smtp_port=int(port),
        smtp_username=get("SMTP_USERNAME"),
        smtp_password=secret("SMTP_PASSWORD"),
        smtp_starttls=(get("SMTP_STARTTLS") or "true").lower() not in {"0", "false", "no"},
        smtp_ca_file=get("SMTP_CA_FILE"),
        sendgrid_webhook_public_key=get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None,
    )


def _check_key(key: SecretStr, where: str | Path) -> None:
    """A key goes into an HTTP header: one line of printable ASCII (never shown back)."""
    value = key.get_secret_value()
    if not (value.isascii() and value.isprintable()) or any(c.isspace() for c in value):
        raise ConfigError(
            "SENDGRID_API_KEY contains a space, a line break or a non-ASCII character",
            where=where,
            fix="paste the key again as one line (SendGrid keys are ASCII and start with SG.)",
        )


def _check_host(host: str, where: str | Path) -> None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(host)
        parts.port  # noqa: B018 - reading it validates the port
        # "http://host:" (a port left out) parses, but fails at the first request.
        valid = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and not parts.netloc.endswith(":")
        )
    except ValueError:
        valid = False
    if not valid or not host.isascii() or any(c.isspace() for c in host):
        raise ConfigError(
            # Not shown: a key pasted into this line must not be printed.
            "SENDGRID_API_HOST is not an http(s) URL"
            + (" (it looks like an API key)" if host.startswith("SG.") else ""),
            where=where,
            fix=f"set it to {DEFAULT_SENDGRID_HOST} (or remove it)",
        )
