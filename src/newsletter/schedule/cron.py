"""The cron run, `newsletter send --due`: send what is due under the lock, log it, exit coded.

`run_due` holds the workspace's cron lock and sends every scheduled issue whose time has
come and that is not fully sent, resuming partial sends through the ledger, and leaves
alone issues more than `max_lateness_hours` late (saying so once). Issues scheduled
through SendGrid are handed over ahead of time (schedule.handover). Everything goes to
logs/newsletter.log (schedule.run_log: rotated, secrets masked); the exit code
(errors.ExitCode) tells cron and systemd what happened.

The clock is never read here: `run_due` takes `now`; the CLI passes `system_clock()`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from newsletter.deliver.backends import uncounted_rehearsals
from newsletter.deliver.backends.sendgrid.batches import BatchClient, sendgrid_batches_for
from newsletter.errors import (
    AuthError,
    ConfigError,
    DeliveryError,
    ExitCode,
    LockBusy,
    NewsletterError,
    UserError,
)
from newsletter.schedule.due_lock import due_lock
from newsletter.schedule.failures import clear_failure, note_failure
from newsletter.schedule.handover import Handover, hand_over, record_handed_over
from newsletter.schedule.readiness import check_backend
from newsletter.schedule.run_log import run_log
from newsletter.schedule.send_time import aware_utc, span
from newsletter.schedule.store import (
    SUBMIT_AHEAD,
    Entry,
    Schedule,
    Status,
    get_schedule,
    issue_progress,
    list_schedules,
    note_too_late,
    open_schedule_database,
)

if TYPE_CHECKING:
    from newsletter.db import Connection

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from newsletter.config import Settings
    from newsletter.deliver.sender import Summary

# One logger name for scheduled sending, as the run log showed before the module split.
log = logging.getLogger("newsletter.schedule")


# --------------------------------------------------------------------------- sending


class IssueSender(Protocol):
    """Sends one issue through the ledger without asking anything; raises on a refusal."""

    def __call__(self, settings: Settings, slug: str, handover: Handover | None) -> Summary: ...


def send_issue(settings: Settings, slug: str, handover: Handover | None) -> Summary:
    """The sender used the way `newsletter send SLUG --yes` uses it."""
    from newsletter.deliver.options import SendOptions
    from newsletter.deliver.sender import Sender

    # Scheduled through SendGrid: that issue goes by SendGrid whatever [delivery] backend says.
    options = (
        SendOptions()
        if handover is None
        else SendOptions(backend="sendgrid", send_at=handover.send_at, batch_id=handover.batch_id)
    )
    with Sender(settings, slug, options) as sender:
        preflight = sender.preflight()
        log.info(
            "%s: %s recipients to send (%s already sent, %s unknown held) via %s",
            slug,
            preflight.recipients,
            preflight.already_sent,
            preflight.unknown_held,
            preflight.backend,
        )
        return sender.send()


# --------------------------------------------------------------------------- the run


class Outcome(StrEnum):
    SENT = "sent"
    SUBMITTED = "submitted"
    PARTLY = "partly sent"
    FAILED = "failed"
    TOO_LATE = "too late"


@dataclass(frozen=True)
class IssueRun:
    """What the cron run did with one issue, and the one line it says about it."""

    issue: str
    outcome: Outcome
    line: str
    sent: int = 0
    error: NewsletterError | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.outcome in (Outcome.SENT, Outcome.SUBMITTED)


# The run log's word for each exit code: "run finished: exit 4 (auth)".
_SAID = {
    ExitCode.SENT: "sent",
    ExitCode.CONFIG: "config",
    ExitCode.FAILED: "failed",
    ExitCode.AUTH: "auth",
    ExitCode.LOCK_BUSY: "lock busy",
    ExitCode.PARTLY_FAILED: "partly failed",
    ExitCode.NOTHING_DUE: "nothing due",
}


@dataclass
class RunResult:
    issues: list[IssueRun] = field(default_factory=list)
    stopped: NewsletterError | None = None  # why the run ended before its work was done
    busy: bool = False
    log_path: Path | None = None

    @property
    def unreported_stop(self) -> NewsletterError | None:
        """Why the run stopped, when no issue's own line says it already."""
        stopped = self.stopped
        if stopped is None or any(run.error is stopped for run in self.issues):
            return None
        return stopped

    @property
    def exit_code(self) -> ExitCode:
        if self.busy:
            return ExitCode.LOCK_BUSY
        if not self.issues and self.stopped is None:
            return ExitCode.NOTHING_DUE
        if self.stopped is None and all(run.ok for run in self.issues):
            return ExitCode.SENT
        if any(run.ok or run.outcome is Outcome.PARTLY for run in self.issues):
            return ExitCode.PARTLY_FAILED
        if isinstance(self.stopped, LockBusy):
            return ExitCode.LOCK_BUSY
        if isinstance(self.stopped, AuthError):
            return ExitCode.AUTH
        if isinstance(self.stopped, UserError):
            return ExitCode.CONFIG
        return ExitCode.FAILED


# A refusal that every other issue would meet too: the run stops at the first one.
_RUN_STOPPERS = (AuthError, ConfigError, LockBusy)


def run_due(
    settings: Settings,
    now: dt.datetime,
    *,
    send: IssueSender = send_issue,
    batches: Callable[[Settings], BatchClient] = sendgrid_batches_for,
    submit_ahead: dt.timedelta = SUBMIT_AHEAD,
    lock_class: type[BaseFileLock] | None = None,
    on_issue: Callable[[IssueRun], None] | None = None,
) -> RunResult:
    """The cron job: send what is due at `now`, under the workspace lock.

    Raises UserError only when it cannot even keep its log (workspace not writable);
    everything else is logged and comes back in the result.
    """
    now = aware_utc(now)
    with run_log(settings) as log_path:
        result = RunResult(log_path=log_path)
        try:
            with due_lock(settings, now, lock_class=lock_class):
                _run_locked(settings, now, result, send, batches, submit_ahead, on_issue)
        except LockBusy as busy:
            log.info("not run: %s", busy.line())
            result.busy = True
            result.stopped = busy
        except NewsletterError as error:
            log.error("run stopped: %s", error.line())
            result.stopped = error
        except Exception as exc:
            log.exception("run stopped by an unexpected error")
            result.stopped = DeliveryError(
                f"unexpected error: {type(exc).__name__}: {exc}",
                fix=f"details in {log_path}",
            )
        log.info(
            "run finished: exit %d (%s)",
            result.exit_code,
            _SAID[result.exit_code],
        )
        return result


def _run_locked(
    settings: Settings,
    now: dt.datetime,
    result: RunResult,
    send: IssueSender,
    batches: Callable[[Settings], BatchClient],
    submit_ahead: dt.timedelta,
    on_issue: Callable[[IssueRun], None] | None,
) -> None:
    max_lateness = dt.timedelta(hours=settings.file.delivery.max_lateness_hours)
    conn = open_schedule_database(settings)
    try:
        entries = list_schedules(
            conn,
            now,
            max_lateness=max_lateness,
            submit_ahead=submit_ahead,
            rehearsals=uncounted_rehearsals(settings),
        )
        due = [entry for entry in entries if entry.status in (Status.DUE, Status.FAILED)]
        late = [entry for entry in entries if entry.status is Status.TOO_LATE]
        log.info(
            "run at %s: %d scheduled, %d due, %d too late",
            now.isoformat(timespec="seconds"),
            len(entries),
            len(due),
            len(late),
        )
        for entry in late:
            run = _too_late(conn, entry, max_lateness, now)
            if run is not None:
                _done(result, run, on_issue)
        if due:
            check_backend(settings)
        for entry in due:
            run = _send_one(conn, settings, entry, now, send, batches)
            if run is None:
                continue
            _done(result, run, on_issue)
            if isinstance(run.error, _RUN_STOPPERS):
                result.stopped = run.error
                break
    finally:
        conn.close()


def _done(result: RunResult, run: IssueRun, on_issue: Callable[[IssueRun], None] | None) -> None:
    result.issues.append(run)
    (log.info if run.ok else log.error)("%s", run.line)
    if on_issue is not None:
        on_issue(run)


def _too_late(
    conn: Connection, entry: Entry, max_lateness: dt.timedelta, now: dt.datetime
) -> IssueRun | None:
    """Report a too-late issue once; later runs stay quiet about it."""
    if not note_too_late(conn, entry.issue, now):
        log.info("%s: still too late (reported before), not sent", entry.issue)
        return None
    item = entry.schedule
    sent = f"; {entry.progress.describe()}" if entry.progress.started else ""
    line = (
        f"not sent {entry.issue}: it was due {item.describe()}, {span(now - item.send_at)} ago, "
        f"more than max_lateness_hours ({span(max_lateness)}){sent} — send it by hand with "
        f"`newsletter send {entry.issue}`, or schedule it again"
    )
    return IssueRun(entry.issue, Outcome.TOO_LATE, line)


def _send_one(
    conn: Connection,
    settings: Settings,
    entry: Entry,
    now: dt.datetime,
    send: IssueSender,
    batches: Callable[[Settings], BatchClient],
) -> IssueRun | None:
    slug = entry.issue
    item = get_schedule(conn, slug)  # unscheduled since the list was read?
    if item is None:
        log.info("%s: unscheduled meanwhile, not sent", slug)
        return None
    rehearsals = uncounted_rehearsals(settings)
    before = issue_progress(conn, slug, rehearsals).counts.get("sent", 0)
    try:
        handover = hand_over(conn, settings, item, batches) if item.via_sendgrid else None
        if item.via_sendgrid and handover is None:
            log.info("%s: unscheduled meanwhile, not handed to SendGrid", slug)
            return None
        log.info(
            "%s: sending (due %s%s)",
            slug,
            item.describe(),
            f", SendGrid batch {handover.batch_id}, send_at {handover.send_at}" if handover else "",
        )
        report = send(settings, slug, handover)
    except NewsletterError as error:
        if not note_failure(conn, slug, error.line(), now):
            log.info("%s: still failing (reported before): %s", slug, error.line())
            return None
        return IssueRun(slug, Outcome.FAILED, f"failed {slug}: {error.line()}", error=error)
    finally:
        if item.via_sendgrid:
            record_handed_over(conn, slug)
    clear_failure(conn, slug)
    held = issue_progress(conn, slug, rehearsals).counts.get("unknown", 0) - report.unknown
    return _outcome(item, report, before, now, handover, held)


def _incomplete(slug: str, sent: int, before: int, held: int) -> IssueRun:
    """Everyone was tried, but an interrupted run left some unknown: not complete."""
    outcome = Outcome.PARTLY if sent or before else Outcome.FAILED
    had = f", {before:,} had it already" if before else ""
    line = (
        f"{outcome.value} {slug}: {sent:,} sent{had}, {held:,} left unknown by an interrupted "
        f"run (they may have it) — see `newsletter status {slug}`; "
        f"`newsletter send {slug} --resend-unknown` sends to them again"
    )
    return IssueRun(slug, outcome, line, sent)


def _outcome(
    item: Schedule,
    report: Summary,
    before: int,
    now: dt.datetime,
    handover: Handover | None,
    held: int = 0,
) -> IssueRun:
    """The line for one sent issue; `held`: unknown rows of earlier runs, left alone."""
    slug = item.issue
    for warning in report.warnings:
        log.warning("%s: %s", slug, warning)
    for address, error in report.failures[:50]:
        log.error("%s: failed %s: %s", slug, address, error)
    for address in report.unknown_addresses[:50]:
        log.error("%s: unknown (may have been delivered) %s", slug, address)
    plural = "" if report.sent == 1 else "s"
    resumed = f", {before:,} had it already" if before else ""
    if held > 0:
        resumed += f", {held:,} left unknown by an interrupted run (see `newsletter status {slug}`)"
    late = now - item.send_at
    timing = "on time" if late < dt.timedelta(minutes=1) else f"{span(late)} late"
    if report.stopped is None and not report.failed and not report.unknown:
        if held > 0:
            return _incomplete(slug, report.sent, before, held)
        if not report.sent and not before:
            line = (
                f"nothing sent {slug}: no active subscriber to send it to — "
                f"`newsletter send {slug}` sends it once the list has some"
            )
            return IssueRun(slug, Outcome.FAILED, line)
        if handover is not None:
            deadline = item.local_time(item.cancel_deadline)
            line = (
                f"handed {slug} to SendGrid for {report.sent:,} recipient{plural}{resumed}: "
                f"it goes out {item.describe()}; `newsletter cancel {slug}` stops it "
                f"until {deadline:%H:%M}"
            )
            return IssueRun(slug, Outcome.SUBMITTED, line, report.sent)
        line = (
            f"sent {slug} to {report.sent:,} recipient{plural}{resumed} "
            f"(due {item.describe()}, {timing}, {report.seconds:.1f} s)"
        )
        return IssueRun(slug, Outcome.SENT, line, report.sent)
    counts = f"{report.sent:,} sent, {report.failed:,} failed, {report.unknown:,} unknown"
    if report.stopped is not None:
        more = f"stopped: {report.stopped.line()}"
    else:
        hints = [f"see `newsletter status {slug}`"]
        if report.failed:
            hints.append(f"`newsletter send {slug}` retries the failed")
        if report.unknown:
            hints.append(f"`newsletter send {slug} --resend-unknown` if they did not get it")
        more = "; ".join(hints)
    outcome = Outcome.PARTLY if report.sent or before else Outcome.FAILED
    line = f"{outcome.value} {slug}: {counts} — {more}"
    return IssueRun(slug, outcome, line, report.sent, error=report.stopped)
