"""What a timelapse counted, for its status (guarded by the runner's mutex)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from node_agent.timelapse.schemas import TimelapseVideo


@dataclass
class TimelapseCounters:
    """Captures, skips, misses and failures, and the last still and error."""

    today: dt.date | None = None
    captures_today: int = 0
    captures_total: int = 0
    skipped: int = 0
    skipped_disk_full: int = 0
    missed: int = 0
    failures: int = 0
    consecutive: int = 0
    miss_reason: str = ""
    last_error: str | None = None
    last_capture_ns: int | None = None
    last_file: str | None = None
    last_capture_ms: float | None = None
    last_video: TimelapseVideo | None = None

    def captured(self, wall_ns: int, rel: str, duration_s: float) -> None:
        """A still was written."""
        self.captures_total += 1
        self.captures_today += 1
        self.consecutive = 0
        self.miss_reason = ""
        self.last_capture_ns = wall_ns
        self.last_file = rel
        self.last_capture_ms = round(duration_s * 1000, 3)

    def camera_failed(self, reason: str) -> int:
        """A camera failure; returns how many in a row."""
        self.failures += 1
        self.consecutive += 1
        self.last_error = reason
        self.miss_reason = f"camera: {reason}"
        return self.consecutive
