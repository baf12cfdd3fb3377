"""The timelapse's schedule loop: the run's thread, its schedule and what it counted.

Slot ``n`` is due at ``t0 + n * interval`` on the monotonic clock; the loop waits for
each, takes the still (``StillCamera``), checks the disk first (``DiskWatch``),
cleans up (``Retention``), notes gaps (``GapLog``) and backs off and reopens the
camera after a failure. ``Timelapse`` (the control) resets and reschedules it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node_agent.backoff import backoff_s
from node_agent.camera.lock import CameraLock
from node_agent.camera.stills import save_jpeg
from node_agent.clock import Clock
from node_agent.naming import still_path
from node_agent.timelapse import storage
from node_agent.timelapse.capture import StillCamera, describe
from node_agent.timelapse.counters import TimelapseCounters
from node_agent.timelapse.diskwatch import DiskWatch
from node_agent.timelapse.events import Observer, TimelapseEvent
from node_agent.timelapse.gaps import GapLog
from node_agent.timelapse.retention import Retention
from node_agent.timelapse.schedule import NS_PER_S, Slot, next_capture_time, seconds_to_ns
from node_agent.timelapse.schemas import TimelapseState
from node_agent.timelapse.settings import TimelapseSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Planned:
    """A slot and the schedule (anchor, interval) it was planned on."""

    slot: Slot
    t0_ns: int
    interval_ns: int


@dataclass(frozen=True)
class LoopSnapshot:
    """The loop as the status page sees it at one instant."""

    state: TimelapseState
    next_wall_ns: int | None
    counters: TimelapseCounters


class ScheduleLoop:
    """One run's schedule and counters, and the thread body that follows them."""

    def __init__(
        self,
        *,
        folder: Path,
        settings: Callable[[], TimelapseSettings],
        camera: StillCamera,
        lock: CameraLock,
        clock: Clock,
        rng: random.Random,
        observer: Observer | None,
        disk: DiskWatch,
        retention: Retention,
        gaps: GapLog,
    ) -> None:
        self.folder = folder
        self._settings = settings
        self._camera = camera
        self._lock = lock
        self._clock = clock
        self._rng = rng
        self._observer = observer
        self._disk = disk
        self._retention = retention
        self._gaps = gaps
        self.stopping = threading.Event()
        self.wake = threading.Event()  # a reload or a stop interrupts a wait
        self._mutex = threading.Lock()  # guards everything below
        self._state = TimelapseState.stopped
        self._t0_ns = 0
        self._interval_ns = seconds_to_ns(settings().interval_s)
        self._last_index = -1
        self._next_ns: int | None = None
        self._retry_at_ns: int | None = None
        self._until_ns: int | None = None  # the run ends here by itself (a day's window)
        self._n = TimelapseCounters()

    # -- what the control does ------------------------------------------------------------

    def reset(self, interval_s: float, until_ns: int | None = None) -> None:
        """A new run: slot 0 is due now; the failure streak and last error are forgotten.

        ``until_ns`` (monotonic): no slot at or after it is taken, and the run ends there.
        """
        with self._mutex:
            self._until_ns = until_ns
            self._interval_ns = seconds_to_ns(interval_s)
            self._t0_ns = self._clock.monotonic_ns()
            self._next_ns = self._t0_ns
            self._last_index = -1
            self._retry_at_ns = None
            self._n.consecutive = 0
            self._n.miss_reason = ""
            self._n.last_error = None
            self._state = TimelapseState.starting
        self.stopping.clear()
        self.wake.clear()

    def reschedule(self, interval_s: float) -> None:
        """A new interval from the last slot taken: the next still comes one new interval
        after the last one."""
        with self._mutex:
            if self._last_index >= 0:
                self._t0_ns += self._last_index * self._interval_ns
                self._last_index = 0
            else:
                self._t0_ns = self._clock.monotonic_ns()
            self._interval_ns = seconds_to_ns(interval_s)
        self.wake.set()

    def end_by(self, until_ns: int) -> None:
        """The run under way ends at ``until_ns`` (monotonic) too, taking no slot at or
        after it (the daily cycle adopting a run started by hand)."""
        with self._mutex:
            if self._until_ns is None or until_ns < self._until_ns:
                self._until_ns = until_ns
        self.wake.set()

    def request_stop(self) -> None:
        """Ask the run to end after the capture under way."""
        self.stopping.set()
        self.wake.set()

    def snapshot(self, running: bool) -> LoopSnapshot:
        """State, next capture (wall clock) and a copy of the counters."""
        with self._mutex:
            next_ns = self._wall_at(self._next_ns) if running and self._next_ns else None
            state = self._state if running else TimelapseState.stopped
            return LoopSnapshot(state, next_ns, dataclasses.replace(self._n))

    def last_file(self) -> str | None:
        """The last still this run wrote (relative to the folder)."""
        with self._mutex:
            return self._n.last_file

    def roll_day(self, today: dt.date) -> None:
        """Count today's stills on disk once a day (a restart keeps counting on)."""
        with self._mutex:
            if self._n.today == today:
                return
        count = len(storage.day_stills(self.folder, today))
        with self._mutex:
            if self._n.today != today:  # whoever counted first (and then counted on) wins
                self._n.today, self._n.captures_today = today, count

    # -- the run's thread -----------------------------------------------------------------

    def _emit(self, event: TimelapseEvent) -> None:
        if self._observer is not None:
            self._observer(event)

    def run(self) -> None:
        """The run's thread: reopen the camera when needed, wait for each slot, take it."""
        try:
            while not self.stopping.is_set() and not self._over():
                if not self._camera.is_open:
                    self._reconnect()
                    continue
                planned = self._plan()
                until = self._until_ns
                if until is not None and planned.slot.at_ns >= until:
                    self._sleep_until(until)  # the window ends before this slot
                    continue
                if self._sleep_until(planned.slot.at_ns):
                    self._take(planned)
        except Exception as err:
            # Not expected; the run ends, and says why, rather than dying silently.
            log.exception("the timelapse stopped on an unexpected error")
            with self._mutex:
                self._n.last_error = f"stopped on an unexpected error: {describe(err)}"
            self._emit(TimelapseEvent("schedule_failed", detail=self._n.last_error))
        finally:
            self._camera.close()
            self._lock.release()
            with self._mutex:
                self._state = TimelapseState.stopped
                self._next_ns = None
            log.info("timelapse stopped")
            # However it ended (a stop from a request, the battery or the daily cycle, the
            # window's end, an error): the status file shows it at once.
            self._emit(TimelapseEvent("stopped"))

    def _over(self) -> bool:
        """Whether the run's window (``until_ns``) has ended."""
        until = self._until_ns
        return until is not None and self._clock.monotonic_ns() >= until

    def _sleep_until(self, at_ns: int) -> bool:
        """Wait for ``at_ns`` (monotonic); False when a stop or a reload came first."""
        while not self.stopping.is_set():
            remaining = at_ns - self._clock.monotonic_ns()
            if remaining <= 0:
                return True
            if self._clock.wait(self.wake, remaining / NS_PER_S):
                self.wake.clear()
                return False
        return False

    def _reconnect(self) -> None:
        retry_at = self._retry_at_ns
        if retry_at is not None and self._until_ns is not None:
            retry_at = min(retry_at, self._until_ns)
        if retry_at is not None and (not self._sleep_until(retry_at) or self._over()):
            return
        try:
            self._camera.open(self._settings().capture_timeout_s)
        except Exception as err:  # any camera library error: count it, back off, retry
            self._camera_failed(f"cannot open the camera: {describe(err)}")
            return
        with self._mutex:
            self._retry_at_ns = None
            if self._last_index < 0:
                # The schedule starts when the camera first delivers, not when it was asked.
                self._t0_ns = self._clock.monotonic_ns()
            self._state = TimelapseState.capturing
            failures = self._n.consecutive
        if failures:
            log.info("timelapse camera open again after %d failed attempts", failures)
        self._emit(TimelapseEvent("open", failures=failures))

    def _camera_failed(self, reason: str) -> None:
        """Count a camera failure, drop the camera and schedule a reopen after a backoff."""
        self._camera.close()
        settings = self._settings()
        with self._mutex:
            failures = self._n.camera_failed(reason)
            delay = backoff_s(
                failures,
                settings.backoff_base_s,
                settings.backoff_max_s,
                jitter="add",
                rng=self._rng,
            )
            self._retry_at_ns = self._clock.monotonic_ns() + seconds_to_ns(delay)
            self._next_ns = self._retry_at_ns
            self._state = TimelapseState.reconnecting
        log.warning(
            "timelapse: %s; reopening the camera in %.1f s (try %d)", reason, delay, failures
        )
        self._emit(TimelapseEvent("failure", failures=failures, detail=reason))
        self._emit(TimelapseEvent("backoff", failures=failures, delay_s=delay, detail=reason))

    def _plan(self) -> _Planned:
        with self._mutex:
            slot = next_capture_time(
                self._t0_ns,
                self._interval_ns,
                self._clock.monotonic_ns(),
                self._last_index,
                grace_ns=self._interval_ns // 2,
            )
            self._next_ns = slot.at_ns
            return _Planned(slot, self._t0_ns, self._interval_ns)

    def _wall_at(self, monotonic_ns: int) -> int:
        return self._clock.time_ns() - (self._clock.monotonic_ns() - monotonic_ns)

    def _gap(
        self, kind: str, scheduled_ns: int, slots: int, reason: str, late_ms: float | None = None
    ) -> None:
        """Record a gap (when gap tracking is on)."""
        if self._settings().gap_tracking:
            self._gaps.record(kind, self._wall_at(scheduled_ns), slots, reason, late_ms)

    def _take(self, planned: _Planned) -> None:
        slot = planned.slot
        fired = self._clock.monotonic_ns()
        wall_ns = self._clock.time_ns()
        with self._mutex:
            settings = self._settings()
            if (self._t0_ns, self._interval_ns) == (planned.t0_ns, planned.interval_ns):
                self._last_index = slot.index
            else:
                # A reload changed the interval after this slot was planned: this slot
                # becomes the start of the new schedule.
                self._t0_ns, self._last_index = slot.at_ns, 0
        if slot.missed:
            with self._mutex:
                self._n.missed += slot.missed
                reason = self._n.miss_reason or "the capture before took longer than the interval"
            first_missed = slot.at_ns - slot.missed * planned.interval_ns
            self._gap("missed", first_missed, slot.missed, reason)
        when = dt.datetime.fromtimestamp(wall_ns / NS_PER_S).astimezone()
        self.roll_day(when.date())
        rel = still_path(when)
        path = self.folder / rel

        if not self._disk_allows(settings, when.date()):
            with self._mutex:
                self._n.skipped_disk_full += 1
            self._gap("missed", slot.at_ns, 1, "disk full")
            self._emit(TimelapseEvent("skip", slot.index, slot.at_ns, fired, detail="disk_full"))
            return
        if path.exists():
            with self._mutex:
                self._n.skipped += 1
            self._emit(TimelapseEvent("skip", slot.index, slot.at_ns, fired, detail="exists"))
            return

        t0 = time.perf_counter()
        try:
            frame = self._camera.still(settings.capture_timeout_s)
        except Exception as err:  # CameraError, CaptureTimeout, or a library's own error
            self._gap("missed", slot.at_ns, 1, f"camera: {describe(err)}")
            self._camera_failed(f"capture failed: {describe(err)}")
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            save_jpeg(path, frame, settings.jpeg_quality)
        except Exception as err:  # a full or read-only disk, or a frame PIL cannot encode
            reason = f"cannot write {rel}: {describe(err)}"
            with self._mutex:
                self._n.failures += 1
                self._n.last_error = reason
            log.error("timelapse: %s", reason)
            self._gap("missed", slot.at_ns, 1, reason)
            self._emit(TimelapseEvent("failure", slot.index, slot.at_ns, fired, detail=reason))
            return
        duration = time.perf_counter() - t0
        with self._mutex:
            self._n.captured(wall_ns, rel.as_posix(), duration)
            self._state = TimelapseState.capturing
        late_ns = fired - slot.at_ns
        if late_ns > seconds_to_ns(settings.late_after_s):
            self._gap("late", slot.at_ns, 1, "woke late", late_ms=round(late_ns / 1e6, 3))
        if settings.gap_tracking:
            log.info("timelapse still %s (%.0f ms)", rel, duration * 1000)
        self._emit(
            TimelapseEvent("capture", slot.index, slot.at_ns, fired, duration, detail=str(rel))
        )
        self._retention.maybe_clean(settings, when.date(), force=False)

    def _disk_allows(self, settings: TimelapseSettings, today: dt.date) -> bool:
        """False at or above stop_percent; the run's state says disk_full meanwhile."""
        allowed = self._disk.allows(
            settings, lambda: self._retention.maybe_clean(settings, today, force=False)
        )
        with self._mutex:
            if not allowed:
                self._state = TimelapseState.disk_full
            elif self._state == TimelapseState.disk_full:
                self._state = TimelapseState.capturing
        return allowed
