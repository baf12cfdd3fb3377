"""The timelapse's retention: delete whole days of stills by age and disk use, at most
once a minute while it runs, or at once when asked."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from node_agent.clock import Clock
from node_agent.timelapse import storage
from node_agent.timelapse.schedule import seconds_to_ns
from node_agent.timelapse.settings import TimelapseSettings

log = logging.getLogger(__name__)

CLEANUP_EVERY_S = 60.0


class Retention:
    """Applies ``storage.apply_retention`` and counts the days it deleted."""

    def __init__(self, folder: Path, clock: Clock) -> None:
        self.folder = folder
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ns: int | None = None
        self.deleted_days = 0

    def maybe_clean(self, settings: TimelapseSettings, today: dt.date, force: bool) -> None:
        """Clean when enabled and a minute has passed since the last time (or ``force``)."""
        if not settings.cleanup_enabled:
            return
        now = self._clock.monotonic_ns()
        with self._lock:
            last = self._last_ns
            if not force and last is not None and now - last < seconds_to_ns(CLEANUP_EVERY_S):
                return
            self._last_ns = now
        try:
            deleted = self.clean(settings, today)
        except OSError as err:
            log.error("timelapse clean-up failed: %s", err)
            return
        for day in deleted:
            log.info("timelapse clean-up deleted the stills of %s", day.isoformat())

    def clean(self, settings: TimelapseSettings, today: dt.date) -> list[dt.date]:
        """Apply retention once, now (when enabled); returns the days deleted."""
        if not settings.cleanup_enabled:
            return []
        deleted = storage.apply_retention(
            self.folder, today, settings.retention_days, settings.cleanup_disk_percent
        )
        with self._lock:
            self.deleted_days += len(deleted)
        return deleted
