"""The daily summary in the spec's format, and the small scheduler that sends it.

``format_daily_summary`` is pure (a golden test holds its text). ``SummaryScheduler``
runs ``send`` once a day at ``HH:MM`` local time on its own thread; its clock and its
wait are injected, so a test drives a day in microseconds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailySummary:
    """What the summary says about one device and one day."""

    device_id: str
    date: dt.date
    photos_captured: int | None = None
    expected_photos: int | None = None
    video_seconds: float | None = None
    disk_used_percent: float | None = None
    disk_free_bytes: int | None = None
    backup: str = "Nothing to back up"
    errors: Sequence[str] = field(default_factory=tuple)
    extra: Sequence[str] = field(default_factory=tuple)  # more lines (the fleet's nodes)
    has_video: bool = True  # False: no video line (the coordinator renders none)


def gigabytes(n: int) -> str:
    """``5100000000`` -> ``5.1GB`` (the spec's spelling)."""
    return f"{n / 1e9:.1f}GB"


def format_daily_summary(s: DailySummary) -> str:
    """The spec's text::

    Pi0Cam Daily Summary - 2026-02-08

    Photos: 750 captured
    Video: 32 seconds
    Disk: 68% used (5.1GB free)
    Backup: Complete

    No errors today.
    """
    lines = [f"{s.device_id} Daily Summary - {s.date.isoformat()}", ""]
    if s.photos_captured is not None:
        of = f" of {s.expected_photos} expected" if s.expected_photos else ""
        lines.append(f"Photos: {s.photos_captured} captured{of}")
    if s.video_seconds is not None:
        lines.append(f"Video: {s.video_seconds:.0f} seconds")
    elif s.has_video:
        lines.append("Video: none")
    if s.disk_used_percent is not None:
        free = f" ({gigabytes(s.disk_free_bytes)} free)" if s.disk_free_bytes is not None else ""
        lines.append(f"Disk: {s.disk_used_percent:.0f}% used{free}")
    lines.append(f"Backup: {s.backup}")
    lines.extend(s.extra)
    lines.append("")
    if s.errors:
        lines.append(f"Errors today ({len(s.errors)}):")
        lines.extend(f"- {e}" for e in s.errors)
    else:
        lines.append("No errors today.")
    return "\n".join(lines)


def next_run(now: dt.datetime, hour: int, minute: int) -> dt.datetime:
    """The next ``hour:minute`` after ``now`` (same tz), today or tomorrow."""
    at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return at if at > now else at + dt.timedelta(days=1)


class SummaryScheduler:
    """Calls ``send(day)`` once a day at ``hour:minute`` local time (see the module)."""

    def __init__(
        self,
        send: Callable[[dt.date], None],
        hour: int,
        minute: int,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone(),
        wait: Callable[[float], bool] | None = None,
    ) -> None:
        self.send = send
        self.hour, self.minute = hour, minute
        self._now = now
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait
        self._due = next_run(now(), hour, minute)
        self._thread: threading.Thread | None = None
        self.sent_days: list[dt.date] = []

    @property
    def due(self) -> dt.datetime:
        """When the next summary goes."""
        return self._due

    def tick(self) -> bool:
        """Send when due (once for the day it is due on); True when it sent."""
        now = self._now()
        if now < self._due:
            return False
        day = self._due.date()
        self._due = next_run(now, self.hour, self.minute)
        try:
            self.send(day)
        except Exception:  # the summary is a courtesy; the scheduler lives on
            log.exception("daily summary for %s failed", day)
        self.sent_days.append(day)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            left = (self._due - self._now()).total_seconds()
            # Wake at least once a minute: a clock set forward (NTP at boot) is noticed.
            if self._wait(max(0.05, min(60.0, left))):
                return

    def start(self) -> None:
        """Run on a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="daily-summary", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread (it is waiting; it ends at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
