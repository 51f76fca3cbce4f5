"""Everything `report SLUG` shows of one sent issue, gathered in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.config import Settings
from newsletter.db import open_database
from newsletter.deliver.backends import uncounted_rehearsals
from newsletter.deliver.ledger_view import LedgerView
from newsletter.errors import UserError
from newsletter.files import atomic_write
from newsletter.issue.file import load_issue
from newsletter.issue.model import ISSUE_FILE, check_slug
from newsletter.report.links import LinkMap
from newsletter.report.overview import rehearsal_only
from newsletter.report.results import IssueResults, has_events, issue_results

if TYPE_CHECKING:
    from newsletter.deliver.backends.sendgrid.stats import CategoryStats


@dataclass(frozen=True)
class Report:
    slug: str
    subject: str
    results: IssueResults
    links: LinkMap
    rehearsal_only: bool = False  # sent to the outbox only: no delivery events will come
    sendgrid: CategoryStats | None = None  # with --from-sendgrid


def load_report(
    settings: Settings, slug: str, *, per_hour: bool = False, from_sendgrid: bool = False
) -> Report:
    check_slug(slug)
    rehearsals = uncounted_rehearsals(settings)
    conn = open_database(settings.database, scan=False)  # reads only
    try:
        view = LedgerView(conn)
        if not view.sent(slug, rehearsals):  # before the issue file: a draft may not load
            raise UserError(
                f"issue {slug!r} was never sent (an outbox rehearsal does not count)",
                fix="`newsletter issues` lists every issue and what became of it",
            )
        issue = load_issue(settings.issue_dir(slug) / ISSUE_FILE)
        newsletter = settings.file.newsletter
        links = LinkMap(
            issue, f"{newsletter.web_base_url.rstrip('/')}/{slug}/", newsletter.unsubscribe_url
        )
        results = issue_results(conn, slug, links, rehearsals, per_hour=per_hour)
        outbox_only = rehearsal_only(view, slug)
    finally:
        conn.close()
    sendgrid = None
    if from_sendgrid:
        from newsletter.report.category_stats import read_category_stats

        sendgrid = read_category_stats(settings, slug, results.first_sent)
    return Report(slug, issue.subject, results, links, outbox_only, sendgrid)


def email_as_sent(settings: Settings, slug: str) -> str:
    """The email of the build that was sent (built again if build/ was cleaned)."""
    built = settings.build_dir(slug) / "email.html"
    if built.is_file():
        return built.read_text(encoding="utf-8")
    from newsletter.build.output import make_build  # the build stack only when needed

    return make_build(settings, slug).rendered.email_html


def write_report_page(settings: Settings, report: Report, target: Path) -> None:
    if not target.name or target.is_dir():
        raise UserError(f"{target} is a folder", where="--html", fix="give a file name")
    if not target.parent.is_dir():
        what = "is a file" if target.parent.exists() else "does not exist"
        raise UserError(
            f"the folder {target.parent} {what}", where="--html", fix="give a path in a folder"
        )
    page = results_page_of(settings, report)
    try:
        atomic_write(target, page)
    except OSError as exc:
        raise UserError(
            f"cannot write the report ({exc.strerror})",
            where=target,
            fix="check the folder's permissions and free space",
        ) from None


def has_results(settings: Settings, slug: str) -> bool:
    """Whether SendGrid's events for the issue arrived (what the preview's link waits for)."""
    from newsletter.db import exists

    if not exists(settings.database):
        return False
    conn = open_database(settings.database, scan=False)
    try:
        return has_events(conn, slug)
    finally:
        conn.close()


def results_page(settings: Settings, slug: str) -> str:
    """The click-map page of `report SLUG --html`, for the live preview."""
    return results_page_of(settings, load_report(settings, slug, per_hour=True))


def results_page_of(settings: Settings, report: Report) -> str:
    from newsletter.report.page import report_html  # lxml, Jinja2, matplotlib: only here

    email = email_as_sent(settings, report.slug)
    return report_html(report.subject, email, report.results, report.links)
