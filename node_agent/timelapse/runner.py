"""``Timelapse``: one thread that holds the camera for a whole run and takes stills on schedule.

The camera lock is taken when the run starts and given back when it ends, so a
recording (or a preview) asked for meanwhile gets a clear "busy: timelapse" at once.
The camera stays open between stills (the research: reopening costs seconds and
makes the exposure flicker). The parts each do one job: ``ScheduleLoop`` (the run's
thread, its schedule and counters), ``StillCamera`` (calls under a deadline),
``DiskWatch``, ``Retention`` and ``GapLog``; this class is the control (start, stop,
reload) and the status.
The clock, the random source, the camera factory and an observer are injected, so
tests drive the schedule and the backoff without patching anything.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from node_agent.camera.factory import make_backend
from node_agent.camera.lock import CameraBusy, CameraLock
from node_agent.camera.protocol import BackendFactory
from node_agent.clock import Clock, SystemClock
from node_agent.timelapse import storage
from node_agent.timelapse.capture import CLOSE_TIMEOUT_S, StillCamera
from node_agent.timelapse.diskwatch import DiskWatch
from node_agent.timelapse.errors import NoStills, TimelapseConflict, TimelapseFailure
from node_agent.timelapse.events import Observer, TimelapseEvent
from node_agent.timelapse.gaps import GapLog
from node_agent.timelapse.loop import ScheduleLoop
from node_agent.timelapse.render import render_day
from node_agent.timelapse.retention import Retention
from node_agent.timelapse.schedule import NS_PER_S
from node_agent.timelapse.schemas import (
    TimelapseStatus,
    TimelapseVideo,
)
from node_agent.timelapse.settings import RELOADABLE_FIELDS, TimelapseSettings

if TYPE_CHECKING:
    from node_agent.timelapse.cycle import DailyCycle

log = logging.getLogger(__name__)

LOCK_OWNER = "timelapse"


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
        self._observer = observer
        self._settings = settings  # in force: the configured ones, or a start's interval
        self._configured = settings
        self.width, self.height = settings.still_size(camera_width, camera_height)
        self.cam_id = cam_id
        self.folder = settings.directory or data_dir / "timelapse"
        self._lock = lock
        self._clock: Clock = clock or SystemClock()
        camera = StillCamera(
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
        self._mutex = threading.Lock()  # guards the settings
        self._loop = ScheduleLoop(
            folder=self.folder,
            settings=lambda: self.settings,
            camera=camera,
            lock=lock,
            clock=self._clock,
            rng=rng or random.Random(),
            observer=observer,
            disk=self._disk,
            retention=self._retention,
            gaps=self._gaps,
        )
        self._control = threading.Lock()  # one start or stop at a time
        self._render_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started_ns: int | None = None
        self._last_video: TimelapseVideo | None = None
        self.cycle: DailyCycle | None = None  # set by the wiring when a window is configured

    # -- control ------------------------------------------------------------------------------

    @property
    def settings(self) -> TimelapseSettings:
        """The settings in force (after any override or reload)."""
        with self._mutex:
            return self._settings

    @property
    def clock(self) -> Clock:
        """The clock the run follows (the daily cycle follows it too)."""
        return self._clock

    @property
    def running(self) -> bool:
        """True from ``start`` until the run's thread has ended."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(
        self, interval_s: float | None = None, until_wall_ns: int | None = None
    ) -> TimelapseStatus:
        """Take the camera lock and start capturing (the camera opens in the run's thread).

        ``until_wall_ns`` (UTC): the run ends by itself there, taking no slot at or after
        it (the daily cycle's window end). Raises TimelapseConflict when already running
        or when the camera is busy.
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
                self._started_ns = self._clock.time_ns()
                interval = self._settings.interval_s
            until = None
            if until_wall_ns is not None:
                until = self._clock.monotonic_ns() + (until_wall_ns - self._clock.time_ns())
            self._loop.reset(interval, until)
            self._thread = threading.Thread(target=self._loop.run, name="timelapse", daemon=True)
            self._thread.start()
        if self._observer is not None:
            self._observer(TimelapseEvent("started"))
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
                self._loop.request_stop()
                thread.join(self.settings.capture_timeout_s + CLOSE_TIMEOUT_S)
                if thread.is_alive():
                    log.error("the timelapse thread did not end in time; it ends after its capture")
                else:
                    self._thread = None
        return self.status()

    def end_by(self, until_wall_ns: int) -> bool:
        """Make the run under way end by ``until_wall_ns`` (UTC) as one started with it
        would; False when none runs."""
        with self._control:
            if not self.running:
                return False
            self._loop.end_by(self._clock.monotonic_ns() + (until_wall_ns - self._clock.time_ns()))
        log.info("the timelapse run under way now ends with the day's window")
        return True

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` (real time) for the run to end; True when none runs."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return not self.running

    def note_video(self, video: TimelapseVideo) -> None:
        """A video rendered elsewhere (the daily cycle's child process) becomes the last."""
        with self._mutex:
            self._last_video = video

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
            self._settings = self._configured = merged
        if "interval_s" in updates:
            self._loop.reschedule(merged.interval_s)
        else:
            self._loop.wake.set()
        return list(updates)

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
        self._loop.roll_day(today)
        running = self.running
        snap = self._loop.snapshot(running)
        n = snap.counters
        status = TimelapseStatus(
            running=running,
            state=snap.state,
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
            next_capture_ns=snap.next_wall_ns,
            disk=None,
            cleanup_enabled=settings.cleanup_enabled,
            retention_days=settings.retention_days,
            deleted_days=self._retention.deleted_days,
            gap_tracking=settings.gap_tracking,
            gaps=self._gaps.recent(),
            last_video=self._last_video,
            cycle=self.cycle.snapshot() if self.cycle is not None else None,
        )
        status.disk = self._disk.read(settings)
        return status

    def report(self, kind: str, detail: str) -> None:
        """Tell the observer something that went wrong outside a capture (a render, a
        start at boot)."""
        if self._observer is not None:
            self._observer(TimelapseEvent(kind, detail=detail))

    def latest_still_bytes(self) -> bytes:
        """The last still's JPEG (or the newest on disk); NoStills (404) when there is none."""
        path = self.latest_still()
        if path is not None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                pass  # deleted by clean-up in between: same as none
        raise NoStills(
            f"no timelapse still yet in {self.folder}: start the timelapse "
            "(POST /api/v1/timelapse/start)"
        )

    def latest_still(self) -> Path | None:
        """The last still this run wrote, or else the newest on disk."""
        last = self._loop.last_file()
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
        except TimelapseFailure as err:
            self.report("render_failed", f"{day.isoformat()}: {err.message}")
            raise
        finally:
            self._render_lock.release()
        with self._mutex:
            self._last_video = video
        log.info("timelapse video %s: %d frames at %g fps", video.file_name, video.frames, fps)
        return video
