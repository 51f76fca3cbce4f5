"""Save -> page updated, measured in the browser: shared by the browser test and
bench/bench_preview.py.

The page records when its email frame holds a document whose title is the new subject
(`Date.now()`, the same clock as `time.time()` here), whether the frame loaded a new
document or the page wrote the new email into it; the time of the write is taken just
before the file is written.
"""

from __future__ import annotations

import time
from pathlib import Path

from playwright.sync_api import Page

HOOK = """() => {
  window.__updates = [];
  const frame = document.getElementById("email-light");
  const seen = () => window.__updates.push({ at: Date.now(), title: frame.contentDocument.title });
  frame.addEventListener("load", seen);  // a new document from srcdoc
  frame.addEventListener("email-updated", seen);  // the document rewritten in place
  window.__sameDocument = true;
}"""


def save_and_wait(
    page: Page, issue_file: Path, old: str, new: str, subject: str, timeout_ms: int
) -> float:
    """Replace `old` by `new` in issue.yaml; return the milliseconds from the write to the
    email frame showing `subject`."""
    page.evaluate(HOOK)
    text = issue_file.read_text(encoding="utf-8")
    assert old in text, old
    changed = text.replace(old, new, 1)
    written = time.time() * 1000
    issue_file.write_text(changed, encoding="utf-8")
    page.wait_for_function(
        "(subject) => (window.__updates || []).some((u) => u.title.startsWith(subject))",
        arg=subject,
        timeout=timeout_ms,
    )
    at: float = page.evaluate(
        "(subject) => window.__updates.find((u) => u.title.startsWith(subject)).at", subject
    )
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded instead"
    return at - written
