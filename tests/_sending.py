"""Kept for test files that still import it: everything lives in tests/_workspace.py."""

from tests._workspace import (
    API_KEY,
    REPO,
    SECRET,
    add_subscribers,
    database,
    ledger_states,
    links,
    numbered,
    recipient,
    sample_workspace,
    settings_of,
    simple_message,
    stub_env,
    write_env,
)

__all__ = [
    "API_KEY",
    "REPO",
    "SECRET",
    "add_subscribers",
    "database",
    "ledger_states",
    "links",
    "numbered",
    "recipient",
    "sample_workspace",
    "settings_of",
    "simple_message",
    "stub_env",
    "write_env",
]
