"""The workspace database's schema: named, ordered migrations, applied by `db.open_database`.

Written in SQLite's SQL; `statements_for` gives PostgreSQL the same migrations, under the
same names and in the same order, with its own id columns (identities, never reused, as
AUTOINCREMENT promises), 64-bit integers, and its own way of changing a CHECK (007).
"""

from __future__ import annotations

import re

# Named, ordered and append-only: a released migration is never edited, only followed.
MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "001_subscribers",
        (
            # AUTOINCREMENT: a removed subscriber's id is never reused, so ledger rows that
            # outlive their subscriber can never be mistaken for someone else's.
            """
            CREATE TABLE subscribers (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                email TEXT NOT NULL,
                email_key TEXT NOT NULL UNIQUE,
                name TEXT,
                first_name TEXT,
                fields TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'active'
                    CHECK (status IN ('active', 'unsubscribed', 'bounced', 'complained')),
                status_reason TEXT,
                source TEXT,
                created TEXT NOT NULL,
                updated TEXT NOT NULL
            )
            """,
            "CREATE INDEX subscribers_status ON subscribers (status)",
        ),
    ),
    (
        "002_ledger",
        (
            """
            CREATE TABLE ledger_issues (
                id INTEGER PRIMARY KEY,
                slug TEXT NOT NULL UNIQUE,
                prepared TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE batches (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                issue_id INTEGER NOT NULL REFERENCES ledger_issues (id),
                state TEXT NOT NULL
                    CHECK (state IN ('sending', 'sent', 'failed', 'unknown', 'released')),
                attempt INTEGER NOT NULL,
                size INTEGER NOT NULL,
                created TEXT NOT NULL,
                finished TEXT,
                message_id TEXT,
                error TEXT
            )
            """,
            "CREATE INDEX batches_issue ON batches (issue_id, state)",
            # email_key is copied from the subscriber so that the same address can never be
            # in one issue's ledger twice, even if it was removed and added again since.
            # A claimed row is `batched`: its state is then its batch's, so the outcome of a
            # request is written once per batch, not once per recipient.
            """
            CREATE TABLE ledger (
                id INTEGER PRIMARY KEY,
                issue_id INTEGER NOT NULL REFERENCES ledger_issues (id),
                subscriber_id INTEGER NOT NULL,
                email_key TEXT NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('pending', 'batched', 'skipped')),
                batch_id INTEGER REFERENCES batches (id),
                attempts INTEGER NOT NULL DEFAULT 0,
                UNIQUE (issue_id, email_key)
            )
            """,
            "CREATE INDEX ledger_claim ON ledger (issue_id, state, subscriber_id)",
            "CREATE INDEX ledger_batch ON ledger (batch_id, state)",
        ),
    ),
    (
        "003_schedules",
        (
            """
            CREATE TABLE schedules (
                issue TEXT PRIMARY KEY,
                send_at_utc TEXT NOT NULL,
                tz TEXT NOT NULL,
                created TEXT NOT NULL
            )
            """,
        ),
    ),
    (
        "004_schedule_sendgrid",
        (
            # IF NOT EXISTS: workspaces scheduled before this migration got them from schedule.py.
            # sendgrid_batches: an issue scheduled through SendGrid, its batch id once created
            # and the ledger batches sent under it (after..through), so `cancel` puts back
            # exactly those. schedule_reports: a too-late issue is reported once.
            """
            CREATE TABLE IF NOT EXISTS sendgrid_batches (
                issue TEXT PRIMARY KEY,
                batch_id TEXT,
                send_at INTEGER NOT NULL,
                state TEXT NOT NULL CHECK (state IN ('planned', 'submitted', 'cancelled')),
                after_ledger_batch INTEGER,
                through_ledger_batch INTEGER,
                updated TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS schedule_reports (
                issue TEXT PRIMARY KEY,
                too_late_reported TEXT NOT NULL
            )
            """,
        ),
    ),
    (
        "005_batch_backend",
        (
            # Which backend sent a batch: a rehearsal (the outbox) must not count as the
            # issue going out when a real backend sends it afterwards. NULL: before 005.
            "ALTER TABLE batches ADD COLUMN backend TEXT",
        ),
    ),
    (
        "006_schedule_failures",
        (
            # A due issue whose send failed: reported by the first cron run that met the
            # error, tried again quietly by the next ones, shown by `schedule --list`.
            """
            CREATE TABLE schedule_failures (
                issue TEXT PRIMARY KEY,
                error TEXT NOT NULL,
                first_failed TEXT NOT NULL,
                last_failed TEXT NOT NULL
            )
            """,
        ),
    ),
    (
        "007_reader_side",
        (
            # `pending`: signed up through the form, not yet confirmed (double opt-in).
            # SQLite cannot change a CHECK, so the table is rebuilt; its AUTOINCREMENT
            # counter is carried over so that no id is ever reused.
            """
            CREATE TABLE subscribers_007 (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                email TEXT NOT NULL,
                email_key TEXT NOT NULL UNIQUE,
                name TEXT,
                first_name TEXT,
                fields TEXT NOT NULL DEFAULT '{}',
                status TEXT NOT NULL DEFAULT 'active' CHECK (
                    status IN ('active', 'unsubscribed', 'bounced', 'complained', 'pending')
                ),
                status_reason TEXT,
                source TEXT,
                created TEXT NOT NULL,
                updated TEXT NOT NULL
            )
            """,
            "INSERT INTO subscribers_007 SELECT * FROM subscribers",
            "DELETE FROM sqlite_sequence WHERE name = 'subscribers_007'",
            """
            INSERT INTO sqlite_sequence (name, seq)
            SELECT 'subscribers_007', seq FROM sqlite_sequence WHERE name = 'subscribers'
            """,
            "DROP TABLE subscribers",
            "ALTER TABLE subscribers_007 RENAME TO subscribers",
            "CREATE INDEX subscribers_status ON subscribers (status)",
            # What each reader agreed to and when: signups, confirmations, unsubscribes
            # (with the issue they came from, when known). Kept when a subscriber is removed.
            """
            CREATE TABLE consent (
                id INTEGER PRIMARY KEY,
                email_key TEXT NOT NULL,
                action TEXT NOT NULL
                    CHECK (action IN ('signup', 'confirm', 'unsubscribe')),
                method TEXT NOT NULL,
                issue TEXT,
                ip TEXT,
                form TEXT,
                created TEXT NOT NULL
            )
            """,
            "CREATE INDEX consent_address ON consent (email_key, action, created)",
            "CREATE INDEX consent_ip ON consent (ip, action, created)",
            "CREATE INDEX consent_issue ON consent (issue, action)",
            # SendGrid's event webhook: one row per distinct event. SendGrid repeats events,
            # so `digest` (a hash of the event's whole content) makes storing idempotent.
            """
            CREATE TABLE events (
                id INTEGER PRIMARY KEY,
                digest TEXT NOT NULL UNIQUE,
                sg_event_id TEXT,
                event TEXT NOT NULL,
                email_key TEXT,
                issue TEXT,
                occurred INTEGER,
                url TEXT,
                reason TEXT,
                bounce_type TEXT,
                machine_open INTEGER NOT NULL DEFAULT 0,
                received TEXT NOT NULL
            )
            """,
            "CREATE INDEX events_issue ON events (issue, event, email_key)",
        ),
    ),
    (
        "008_event_indexes",
        (
            # `report` counts distinct readers per event by walking these indexes in order:
            # people's and machine opens apart in one pass, clicks per link.
            "CREATE INDEX events_reader ON events (issue, event, email_key, machine_open)",
            "CREATE INDEX events_link ON events (issue, event, url, email_key)",
            "DROP INDEX events_issue",  # a prefix of events_reader
        ),
    ),
    (
        "009_batch_claimer",
        (
            # Which sender claimed a batch: on PostgreSQL several senders may work on one
            # issue from several hosts, and a batch left `sending` is made `unknown` only
            # once its claimer is gone (its advisory lock released). NULL on SQLite, where
            # one sender at a time holds the workspace's send lock.
            "ALTER TABLE batches ADD COLUMN claimed_by INTEGER",
        ),
    ),
    (
        "010_prepare_in_chunks",
        (
            # A first send writes the ledger rows a chunk at a time while it sends
            # (deliver.preparation): the list is fixed at the start (active subscribers up
            # to prepare_until), prepared_through says how far the rows are written. Both
            # NULL once every row is written, and for issues prepared before this migration.
            "ALTER TABLE ledger_issues ADD COLUMN prepare_until INTEGER",
            "ALTER TABLE ledger_issues ADD COLUMN prepared_through INTEGER",
        ),
    ),
)

_SUBSCRIBER_STATUSES = "'active', 'unsubscribed', 'bounced', 'complained', 'pending'"
# PostgreSQL changes the CHECK in place: no table to rebuild, no sequence to carry over.
_POSTGRES_OVERRIDES: dict[str, tuple[str, ...]] = {
    "007_reader_side": (
        "ALTER TABLE subscribers DROP CONSTRAINT subscribers_status_check",
        "ALTER TABLE subscribers ADD CONSTRAINT subscribers_status_check "
        f"CHECK (status IN ({_SUBSCRIBER_STATUSES}))",
        *dict(MIGRATIONS)["007_reader_side"][7:],
    ),
}
_ID_COLUMN = re.compile(r"\bINTEGER PRIMARY KEY( AUTOINCREMENT)?")
_INTEGER = re.compile(r"\bINTEGER\b")


def statements_for(name: str, statements: tuple[str, ...], dialect: str) -> tuple[str, ...]:
    """The statements of migration `name` as `dialect` ("sqlite" or "postgresql") runs them."""
    if dialect == "sqlite":
        return statements
    statements = _POSTGRES_OVERRIDES.get(name, statements)
    return tuple(
        _INTEGER.sub(
            "BIGINT", _ID_COLUMN.sub("BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", s)
        )
        for s in statements
    )
