"""Watching the preview's sources: rebuild on changes to the issue, templates or settings."""

from __future__ import annotations

import threading
from pathlib import Path

from newsletter.config import CONFIG_FILE
from newsletter.preview.session import PreviewSession


class _Either:
    """Stops a watchfiles loop when either event is set (it only calls is_set)."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def is_set(self) -> bool:
        return any(event.is_set() for event in self.events)


# Changes closer together than this are one save (an editor writes, renames, touches).
QUIET_MS = 10
# A failed build waits this long for a newer save before its error is shown.
ERROR_GRACE_SECONDS = 0.3


class SourceWatcher:
    """Rebuilds on changes to the issue folder, the workspace templates or newsletter.toml.

    A burst of saves is one rebuild: changes are taken together until `QUIET_MS` pass
    without one, and changes made during a rebuild are all taken by the next one.
    """

    def __init__(self, session: PreviewSession, poll_seconds: float = 0.5):
        self.session = session
        self.poll_ms = int(poll_seconds * 1000)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preview-watch", daemon=True)

    def watched(self) -> list[Path]:
        settings = self.session.settings
        folders = [settings.issue_dir(self.session.slug), settings.path("templates")]
        return [folder for folder in folders if folder.is_dir()]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        from watchfiles import watch

        config = self.session.settings.workspace / CONFIG_FILE
        config_stamp = _stamp(config)
        while not self._stopped.is_set():
            folders = self.watched()
            restart = threading.Event()
            if not folders:  # the issue folder was removed: wait for it to come back
                self._stopped.wait(self.poll_ms / 1000)
                continue
            # inotify cannot see a templates/ folder that does not exist yet, and an editor's
            # save-by-rename drops a watch on a single file: both are polled between events.
            changes_seen = watch(
                *folders,
                stop_event=_Either(self._stopped, restart),
                step=QUIET_MS,
                rust_timeout=self.poll_ms,
                yield_on_timeout=True,
                raise_interrupt=False,
            )
            try:
                for changes in changes_seen:
                    config_changed = _stamp(config) != config_stamp
                    config_stamp = _stamp(config)
                    if self.watched() != folders:
                        restart.set()
                    if changes or config_changed or restart.is_set():
                        self.session.rebuild(
                            reload_settings=config_changed, hold_errors=ERROR_GRACE_SECONDS
                        )
            except (OSError, RuntimeError):  # a watched folder vanished mid-watch: start over
                self._stopped.wait(self.poll_ms / 1000)


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size
