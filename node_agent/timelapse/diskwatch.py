"""The timelapse's disk check: stop writing stills at ``stop_percent``, and say so once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from node_agent.timelapse import storage
from node_agent.timelapse.schemas import DiskState, TimelapseDisk
from node_agent.timelapse.settings import TimelapseSettings

log = logging.getLogger(__name__)


class DiskWatch:
    """Reads the stills disk before each still; logs each change of its state once."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self.state: DiskState | None = None

    def read(self, settings: TimelapseSettings) -> TimelapseDisk | None:
        """The disk now (None when it cannot be read)."""
        return storage.read_disk(self.folder, settings.warn_percent, settings.stop_percent)

    def allows(self, settings: TimelapseSettings, make_room: Callable[[], None]) -> bool:
        """False at or above stop_percent (after ``make_room`` had its chance)."""
        disk = self.read(settings)
        if disk is None:
            return True  # unknown: try, and let a failed write say what is wrong
        if disk.state == DiskState.full:
            make_room()
            disk = self.read(settings)
        state = disk.state if disk else DiskState.ok
        with self._lock:
            previous, self.state = self.state, state
        if state != previous:
            used = disk.used_percent if disk else 0.0
            if state == DiskState.full:
                log.error(
                    "timelapse: disk %.1f %% used (stop at %g %%): no stills are written",
                    used,
                    settings.stop_percent,
                )
            elif state == DiskState.warning:
                log.warning(
                    "timelapse: disk %.1f %% used, approaching the %g %% limit",
                    used,
                    settings.stop_percent,
                )
            elif previous is not None:
                log.info("timelapse: disk use back to %.1f %%", used)
        return state != DiskState.full
