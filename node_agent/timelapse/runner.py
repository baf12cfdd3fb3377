"""``Timelapse``: one thread that holds the camera for a whole run and takes stills on schedule.

The camera lock is taken when the run starts and given back when it ends, so a
recording (or a preview) asked for meanwhile gets a clear "busy: timelapse" at once.
The camera stays open between stills (the research: reopening costs seconds and
makes the exposure flicker). The parts each do one job: ``StillCamera`` (calls under
a deadline), ``DiskWatch``, ``Retention``, ``GapLog`` and ``TimelapseCounters``; this
class is the control (start, stop, reload) and the schedule loop that uses them.
The clock, the random source, the camera factory and an observer are injected, so
tests drive the schedule and the backoff without patching anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from node_agent.backoff import backoff_s
from node_agent.camera.factory import make_backend
from node_agent.camera.lock import CameraBusy, CameraLock
from node_agent.camera.protocol import BackendFactory
from node_agent.camera.stills import save_jpeg
from node_agent.clock import Clock, SystemClock
from node_agent.naming import still_path
from node_agent.timelapse import storage
from node_agent.timelapse.capture import CLOSE_TIMEOUT_S, StillCamera, describe
from node_agent.timelapse.counters import TimelapseCounters
from node_agent.timelapse.diskwatch import DiskWatch
from node_agent.timelapse.errors import TimelapseConflict, TimelapseFailure
from node_agent.timelapse.events import Observer, TimelapseEvent
from node_agent.timelapse.gaps import GapLog
from node_agent.timelapse.render import render_day
from node_agent.timelapse.retention import Retention
from node_agent.timelapse.schedule import NS_PER_S, Slot, next_capture_time, seconds_to_ns
from node_agent.timelapse.schemas import (
    TimelapseState,
    TimelapseStatus,
    TimelapseVideo,
)
from node_agent.timelapse.settings import RELOADABLE_FIELDS, TimelapseSettings

log = logging.getLogger(__name__)

LOCK_OWNER = "timelapse"


@dataclass(frozen=True)
class _Planned:
    """A slot and the schedule (anchor, interval) it was planned on."""

    slot: Slot
    t0_ns: int
    interval_ns: int


class Timelapse:
    """The agent's timelapse mode; ``start``/``stop`` from any thread, one run at a time."""

    def __init__(
        self,
        settings: TimelapseSettings,
        *,
        source: str,
        device: str | None = None,
        camera_width: int,
        camera_height: int,
        camera_fps: float,
        cam_id: str,
        data_dir: Path,
        lock: CameraLock,
        backend_factory: BackendFactory = make_backend,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        observer: Observer | None = None,
    ) -> None:
        self._settings = settings  # in force: the configured ones, or a start's interval
        self._configured = settings
        self.width, self.height = settings.still_size(camera_width, camera_height)
        self.cam_id = cam_id
        self.folder = settings.directory or data_dir / "timelapse"
        self._lock = lock
        self._clock: Clock = clock or SystemClock()
        self._rng = rng or random.Random()
        self._observer = observer
        self._camera = StillCamera(
            backend_factory,
            source=source,
            device=device,
            width=self.width,
            height=self.height,
            fps=camera_fps,
            cam_id=cam_id,
        )
        self._disk = DiskWatch(self.folder)
        self._retention = Retention(self.folder, self._clock)
        self._gaps = GapLog()

        self._mutex = threading.Lock()  # guards the schedule and the counters below
        self._control = threading.Lock()  # one start or stop at a time
        self._render_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wake = threading.Event()  # a reload or a stop interrupts a wait
        self._state = TimelapseState.stopped
        self._started_ns: int | None = None
        # The schedule: slot n is due at t0 + n * interval (monotonic).
        self._t0_ns = 0
        self._interval_ns = seconds_to_ns(settings.interval_s)
        self._last_index = -1
        self._next_ns: int | None = None
        self._retry_at_ns: int | None = None
        self._n = TimelapseCounters()

    # -- control ------------------------------------------------------------------------------

    @property
    def settings(self) -> TimelapseSettings:
        """The settings in force (after any override or reload)."""
        with self._mutex:
            return self._settings

    @property
    def running(self) -> bool:
        """True from ``start`` until the run's thread has ended."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self, interval_s: float | None = None) -> TimelapseStatus:
        """Take the camera lock and start capturing (the camera opens in the run's thread).

        Raises TimelapseConflict when already running or when the camera is busy.
        """
        with self._control:
            if self.running:
                raise TimelapseConflict(
                    "the timelapse is already running; stop it first "
                    "(POST /api/v1/timelapse/stop) to start it again"
                )
            try:
                self._lock.acquire(LOCK_OWNER)
            except CameraBusy as err:
                raise TimelapseConflict(f"{err}; the timelapse needs the camera") from err
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                self._lock.release()
                raise TimelapseFailure(
                    f"cannot create the stills folder {self.folder}: {err}"
                ) from err
            with self._mutex:
                self._settings = self._configured
                if interval_s is not None:
                    self._settings = self._configured.model_copy(update={"interval_s": interval_s})
                self._interval_ns = seconds_to_ns(self._settings.interval_s)
                self._t0_ns = self._clock.monotonic_ns()
                self._next_ns = self._t0_ns
                self._last_index = -1
                self._retry_at_ns = None
                self._n.consecutive = 0
                self._n.miss_reason = ""
                self._n.last_error = None
                self._started_ns = self._clock.time_ns()
                self._state = TimelapseState.starting
                interval = self._settings.interval_s
            self._stopping.clear()
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name="timelapse", daemon=True)
            self._thread.start()
        log.info(
            "timelapse started: a still every %g s, %dx%d, into %s",
            interval,
            self.width,
            self.height,
            self.folder,
        )
        if interval < 1:
            log.info("interval below 1 s: stills are named by the second, so one a second is kept")
        return self.status()

    def stop(self) -> TimelapseStatus:
        """End the run: finish the capture under way, close the camera, release the lock."""
        with self._control:
            thread = self._thread
            if thread is not None:
                self._stopping.set()
                self._wake.set()
                thread.join(self.settings.capture_timeout_s + CLOSE_TIMEOUT_S)
                if thread.is_alive():
                    log.error("the timelapse thread did not end in time; it ends after its capture")
                else:
                    self._thread = None
        return self.status()

    def apply(self, new: TimelapseSettings) -> list[str]:
        """Take the reloadable fields of ``new`` (a SIGHUP); returns the names that changed.

        They become the configured settings and the ones in force (a start's interval
        gives way to the configured one). A new interval starts from the last slot
        taken, so the next still comes one new interval after the last one. Raises
        pydantic's ValidationError when the merged settings are inconsistent (nothing is
        changed then).
        """
        with self._mutex:
            old = self._settings
            updates = {
                name: getattr(new, name)
                for name in sorted(RELOADABLE_FIELDS)
                if getattr(new, name) != getattr(old, name)
            }
            if not updates:
                return []
            merged = TimelapseSettings.model_validate(old.model_dump() | updates)
            if "interval_s" in updates:
                if self._last_index >= 0:
                    self._t0_ns += self._last_index * self._interval_ns
                    self._last_index = 0
                else:
                    self._t0_ns = self._clock.monotonic_ns()
                self._interval_ns = seconds_to_ns(merged.interval_s)
            self._settings = self._configured = merged
        self._wake.set()
        return list(updates)

    # -- the schedule loop ---------------------------------------------------------------------

    def _emit(self, event: TimelapseEvent) -> None:
        if self._observer is not None:
            self._observer(event)

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                if not self._camera.is_open:
                    self._reconnect()
                    continue
                planned = self._plan()
                if self._sleep_until(planned.slot.at_ns):
                    self._take(planned)
        except Exception as err:
            # Not expected; the run ends, and says why, rather than dying silently.
            log.exception("the timelapse stopped on an unexpected error")
            with self._mutex:
                self._n.last_error = f"stopped on an unexpected error: {describe(err)}"
        finally:
            self._camera.close()
            self._lock.release()
            with self._mutex:
                self._state = TimelapseState.stopped
                self._next_ns = None
            log.info("timelapse stopped")

    def _sleep_until(self, at_ns: int) -> bool:
        """Wait for ``at_ns`` (monotonic); False when a stop or a reload came first."""
        while not self._stopping.is_set():
            remaining = at_ns - self._clock.monotonic_ns()
            if remaining <= 0:
                return True
            if self._clock.wait(self._wake, remaining / NS_PER_S):
                self._wake.clear()
                return False
        return False

    def _reconnect(self) -> None:
        retry_at = self._retry_at_ns
        if retry_at is not None and not self._sleep_until(retry_at):
            return
        try:
            self._camera.open(self.settings.capture_timeout_s)
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
        settings = self.settings
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
        if self.settings.gap_tracking:
            self._gaps.record(kind, self._wall_at(scheduled_ns), slots, reason, late_ms)

    def _take(self, planned: _Planned) -> None:
        slot = planned.slot
        fired = self._clock.monotonic_ns()
        wall_ns = self._clock.time_ns()
        with self._mutex:
            settings = self._settings
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
        self._roll_day(when.date())
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

    def _roll_day(self, today: dt.date) -> None:
        with self._mutex:
            if self._n.today == today:
                return
        count = len(storage.day_stills(self.folder, today))
        with self._mutex:
            if self._n.today != today:  # whoever counted first (and then counted on) wins
                self._n.today, self._n.captures_today = today, count

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

    # -- what the API reads -------------------------------------------------------------------

    def clean_now(self) -> list[dt.date]:
        """Apply retention once, now (when clean-up is enabled); returns the days deleted."""
        today = dt.datetime.fromtimestamp(self._clock.time_ns() / NS_PER_S).astimezone().date()
        return self._retention.clean(self.settings, today)

    def status(self) -> TimelapseStatus:
        """The run's counters and state, from memory plus one statvfs."""
        settings = self.settings
        now_wall = self._clock.time_ns()
        today = dt.datetime.fromtimestamp(now_wall / NS_PER_S).astimezone().date()
        self._roll_day(today)
        running = self.running
        with self._mutex:
            n = self._n
            next_ns = self._wall_at(self._next_ns) if running and self._next_ns else None
            status = TimelapseStatus(
                running=running,
                state=self._state if running else TimelapseState.stopped,
                interval_s=settings.interval_s,
                jpeg_quality=settings.jpeg_quality,
                width=self.width,
                height=self.height,
                directory=str(self.folder),
                started_ns=self._started_ns if running else None,
                captures_today=n.captures_today,
                captures_total=n.captures_total,
                skipped=n.skipped,
                skipped_disk_full=n.skipped_disk_full,
                missed=n.missed,
                failures=n.failures,
                consecutive_failures=n.consecutive,
                last_error=n.last_error,
                last_capture_ns=n.last_capture_ns,
                last_capture_file=n.last_file,
                last_capture_ms=n.last_capture_ms,
                next_capture_ns=next_ns,
                disk=None,
                cleanup_enabled=settings.cleanup_enabled,
                retention_days=settings.retention_days,
                deleted_days=self._retention.deleted_days,
                gap_tracking=settings.gap_tracking,
                gaps=self._gaps.recent(),
                last_video=n.last_video,
            )
        status.disk = self._disk.read(settings)
        return status

    def latest_still(self) -> Path | None:
        """The last still this run wrote, or else the newest on disk."""
        with self._mutex:
            last = self._n.last_file
        if last is not None and (self.folder / last).is_file():
            return self.folder / last
        return storage.latest_still(self.folder)

    def render(self, day: dt.date, fps: float) -> TimelapseVideo:
        """Render the day's stills into an MP4 (one render at a time)."""
        if not self._render_lock.acquire(blocking=False):
            raise TimelapseConflict(
                "a timelapse video is being rendered; try again when it is done"
            )
        try:
            video = render_day(self.folder, day, fps, self.cam_id)
        finally:
            self._render_lock.release()
        with self._mutex:
            self._n.last_video = video
        log.info("timelapse video %s: %d frames at %g fps", video.file_name, video.frames, fps)
        return video
