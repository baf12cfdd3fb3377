"""The daily timelapse cycle: wait for the window, capture in it, then render and back up.

One thread follows the states of the observability spec::

    waiting --(window start)--> capturing --(window end)--> creating_video
        --> backing_up (when a backup target is set) --> idle --(next day)--> waiting

``capturing`` is the timelapse's own run (``Timelapse.start`` with the window's end, so
slot 0 is the window's start and the run ends by itself before the first slot at or
after the end). ``creating_video`` renders the day's stills in a child process at
``render_nice`` with one encoder thread (``render.render_in_child``): nothing runs
beside a capture. A failed render or backup ends the day in ``error`` with the
reason, told through ``on_event``; the next day starts again with ``waiting``.

Every state change goes to ``publish`` (the status file's service) with the spec's
field names. The clock is injected, so a test runs a day in milliseconds; the cycle's
own waits are the only clock waits while it is not capturing, and while capturing it
waits on the run's thread (real time) rather than on the clock.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from node_agent.clock import Clock
from node_agent.errors import AgentError
from node_agent.naming import video_name
from node_agent.timelapse import storage
from node_agent.timelapse.dayplan import DayPlan, day_plan, midnight_after, zone
from node_agent.timelapse.render import ChildRender, render_in_child
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.schedule import NS_PER_S
from node_agent.timelapse.schemas import CycleState, TimelapseCycle, TimelapseDay, TimelapseVideo
from node_agent.timelapse.settings import TimelapseSettings

log = logging.getLogger(__name__)

# The notification events the cycle raises (kind, level); the message says what and why.
VIDEO_CREATED = "video_created"  # INFO
VIDEO_CREATION_FAILED = "video_creation_failed"  # ERROR
BACKUP_DONE = "backup_done"  # INFO
BACKUP_FAILED = "backup_failed"  # ERROR
SCHEDULE_FAILED = "schedule_failed"  # ERROR: the cycle itself hit an unexpected error

RETRY_AFTER_ERROR_S = 60.0


class Publish(Protocol):
    """Told every state change and the day's plan (the status file's service)."""

    def __call__(
        self,
        *,
        status: str,
        today: dict[str, Any] | None,
        last_video: dict[str, Any] | None,
        error: str | None,
    ) -> object:
        """``status``: a CycleState value; ``today``/``last_video``: the spec's fields.
        What it returns is not used (the status file's service says whether it wrote)."""


OnEvent = Callable[[str, str, str], None]  # (kind, message, level: "INFO"/"ERROR")
Render = Callable[[Path, dt.date, float, str], ChildRender]
Backup = Callable[[Path, str], str]  # (video, relative name) -> where it went


def _no_publish(
    *,
    status: str,
    today: dict[str, Any] | None,
    last_video: dict[str, Any] | None,
    error: str | None,
) -> None:
    return None


def last_video_fields(video: TimelapseVideo, backed_up: bool) -> dict[str, Any]:
    """The status file's ``last_video`` (the observability spec's names)."""
    return {
        "date": video.day,
        "filename": Path(video.file_name).name,
        "duration_seconds": video.duration_s,
        "photos_used": video.frames,
        "backed_up": backed_up,
    }


def day_model(plan: DayPlan) -> TimelapseDay:
    """A plan as the wire shows it."""
    fields = plan.today_fields()
    return TimelapseDay(
        date=fields["date"],
        window=plan.window,
        start_time=fields["start_time"],
        end_time=fields["end_time"],
        start_ns=None if plan.start is None else round(plan.start.timestamp() * NS_PER_S),
        end_ns=None if plan.end is None else round(plan.end.timestamp() * NS_PER_S),
        interval_seconds=plan.interval_s,
        expected_photos=plan.expected_photos,
        note=plan.note,
    )


class DailyCycle:
    """The cycle's thread and state; ``start``/``stop`` from any thread."""

    def __init__(
        self,
        timelapse: Timelapse,
        settings: Callable[[], TimelapseSettings],
        clock: Clock,
        *,
        publish: Publish | None = None,
        on_event: OnEvent | None = None,
        render: Render | None = None,
        backup: Backup | None = None,
    ) -> None:
        self._timelapse = timelapse
        self._settings = settings
        self._clock = clock
        self._publish = publish or _no_publish
        self._on_event = on_event
        self._render = render or self._render_in_child
        self._backup = backup
        self._stop = threading.Event()
        self._mutex = threading.Lock()  # guards the fields below
        self._state = CycleState.idle
        self._since_ns = clock.time_ns()
        self._plan: DayPlan | None = None
        self._error: str | None = None
        self._error_date: dt.date | None = None  # the day an error belongs to
        self._plan_new = False  # a plan not yet published
        self._pending: DayPlan | None = None  # a day captured and not yet finished
        self._captured: set[dt.date] = set()
        self._last_video: dict[str, Any] | None = None
        self._backed_up: bool | None = None
        self._backed_up_to: str | None = None
        self._render_cpu_s: float | None = None
        self._thread: threading.Thread | None = None

    # -- control ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the cycle's thread (a day already over with stills and no video is finished)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._recover()
        self._thread = threading.Thread(target=self.run, name="timelapse-cycle", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the cycle and the capture under way (a render in progress is waited for)."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        self._timelapse.stop()

    @property
    def state(self) -> CycleState:
        """The current state."""
        with self._mutex:
            return self._state

    def snapshot(self) -> TimelapseCycle:
        """The cycle as the status API shows it."""
        with self._mutex:
            return TimelapseCycle(
                state=self._state,
                since_ns=self._since_ns,
                today=None if self._plan is None else day_model(self._plan),
                error=self._error if self._state == CycleState.error else None,
                last_video_backed_up=self._backed_up,
                last_video_backed_up_to=self._backed_up_to,
                last_render_cpu_s=self._render_cpu_s,
            )

    # -- the thread ---------------------------------------------------------------------------

    def run(self) -> None:
        """Step through the days until stopped; an unexpected error is told and retried."""
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as err:
                log.exception("the timelapse cycle failed")
                self._fail(SCHEDULE_FAILED, f"the timelapse cycle failed: {err}")
                self._wait_s(RETRY_AFTER_ERROR_S)

    def step(self) -> None:
        """One decision: finish a captured day, wait for the window, capture, or rest."""
        now = self._now()
        pending = self._pending
        if pending is not None and pending.end is not None and now >= pending.end:
            self._finish(pending)
            self._pending = None
            return
        plan = self._today(now)
        if not plan.captures:
            self._rest(plan, now)
            return
        assert plan.start is not None and plan.end is not None
        if now < plan.start:
            self._enter(CycleState.waiting)
            self._wait_until(plan.start)
        elif now < plan.end and plan.date not in self._captured:
            self._capture(plan)
        elif self._pending is not None:
            self._wait_until(plan.end)  # stopped by hand before the end: finish at the end
        else:
            self._rest(plan, now)

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.time_ns() / NS_PER_S, dt.UTC)

    def _today(self, now: dt.datetime) -> DayPlan:
        """Today's plan (made once a day, and published when it is new)."""
        settings = self._settings()
        date = now.astimezone(zone(settings, now.date())).date()
        with self._mutex:
            plan = self._plan
        if plan is None or plan.date != date or plan.interval_s != settings.interval_s:
            plan = day_plan(date, settings)
            with self._mutex:
                self._plan = plan
                self._plan_new = True  # published with the next state change
                if self._state == CycleState.error and plan.date != self._error_date:
                    self._state = CycleState.idle  # a new day: the error was yesterday's
            log.info(
                "timelapse plan for %s: %s to %s, a still every %g s, %d expected%s",
                plan.date,
                plan.start,
                plan.end,
                plan.interval_s,
                plan.expected_photos,
                f" ({plan.note})" if plan.note else "",
            )
        return plan

    def _rest(self, plan: DayPlan, now: dt.datetime) -> None:
        """Nothing more today: idle (or error, kept until the next day) until midnight."""
        if self.state != CycleState.error:
            self._enter(CycleState.idle)
        self._wait_until(midnight_after(plan.date, self._settings()))

    def _capture(self, plan: DayPlan) -> None:
        assert plan.end is not None
        self._captured.add(plan.date)
        self._pending = plan
        self._enter(CycleState.capturing)
        end_ns = round(plan.end.timestamp() * NS_PER_S)
        try:
            self._timelapse.start(plan.interval_s, until_wall_ns=end_ns)
        except AgentError as err:  # the camera is busy (a recording), or already running
            if self._timelapse.end_by(end_ns):
                # A run started by hand before the window: it is the window's run now, at
                # its own interval, and ends at the window's end so the day's video is made.
                log.info("timelapse cycle: a run started by hand is going; it ends with the window")
            else:
                log.warning("timelapse cycle: %s; the window goes on without this run", err.message)
        while not self._stop.is_set() and not self._timelapse.join(0.2):
            pass

    def _finish(self, plan: DayPlan) -> None:
        """creating_video, then backing_up, then idle; or error with the reason."""
        settings = self._settings()
        folder = self._timelapse.folder
        self._enter(CycleState.creating_video)
        t0 = time.monotonic()
        try:
            done = self._render(folder, plan.date, settings.video_fps, self._timelapse.cam_id)
        except AgentError as err:
            self._fail(
                VIDEO_CREATION_FAILED, f"timelapse video for {plan.date} failed: {err.message}"
            )
            return
        wall_s = time.monotonic() - t0
        video, cpu_s = done.video, done.cpu_s
        self._timelapse.note_video(video)
        with self._mutex:
            self._render_cpu_s = cpu_s
            self._last_video = last_video_fields(video, backed_up=False)
            self._backed_up, self._backed_up_to = None, None
        self._tell(
            VIDEO_CREATED,
            f"timelapse video {video.file_name}: {video.frames} photos, {video.duration_s:g} s "
            f"(rendered in {wall_s:.1f} s, {cpu_s:.1f} CPU s at nice {done.niceness})",
            "INFO",
        )
        if self._backup is None:
            self._enter(CycleState.idle)
            return
        self._enter(CycleState.backing_up)
        try:
            where = self._backup(folder / video.file_name, video.file_name)
        except AgentError as err:
            with self._mutex:
                self._backed_up = False
            self._fail(BACKUP_FAILED, f"backup of {video.file_name} failed: {err.message}")
            return
        except OSError as err:
            with self._mutex:
                self._backed_up = False
            self._fail(BACKUP_FAILED, f"backup of {video.file_name} failed: {err}")
            return
        with self._mutex:
            self._backed_up, self._backed_up_to = True, where
            self._last_video = last_video_fields(video, backed_up=True)
        self._tell(BACKUP_DONE, f"timelapse video {video.file_name} backed up to {where}", "INFO")
        self._enter(CycleState.idle)

    def _render_in_child(self, folder: Path, day: dt.date, fps: float, cam_id: str) -> ChildRender:
        return render_in_child(folder, day, fps, cam_id, nice=self._settings().render_nice)

    def _recover(self) -> None:
        """After a restart: today's window over, stills on disk, no video yet: finish it."""
        now = self._now()
        plan = self._today(now)
        if not plan.captures or plan.end is None or now < plan.end:
            return
        folder = self._timelapse.folder
        made = (folder / video_name(self._timelapse.cam_id, plan.date)).exists()
        if not made and storage.day_stills(folder, plan.date):
            self._captured.add(plan.date)
            self._pending = plan

    # -- bookkeeping --------------------------------------------------------------------------

    def _enter(self, state: CycleState, error: str | None = None) -> None:
        with self._mutex:
            if self._state == state and error is None and not self._plan_new:
                return
            self._state, self._since_ns = state, self._clock.time_ns()
            self._error = error
            if state == CycleState.error and self._plan is not None:
                self._error_date = self._plan.date
        log.info("timelapse cycle: %s%s", state.value, f" ({error})" if error else "")
        self._announce()

    def _fail(self, kind: str, reason: str) -> None:
        log.error("timelapse cycle: %s", reason)
        self._enter(CycleState.error, reason)
        self._tell(kind, reason, "ERROR")

    def _announce(self) -> None:
        with self._mutex:
            self._plan_new = False
            state, error = self._state, self._error
            today = None if self._plan is None else self._plan.today_fields()
            last_video = None if self._last_video is None else dict(self._last_video)
        try:
            self._publish(status=state.value, today=today, last_video=last_video, error=error)
        except Exception:  # the status file's problem must not stop the cycle
            log.exception("timelapse cycle: publishing the state failed")

    def _tell(self, kind: str, message: str, level: str) -> None:
        if self._on_event is None:
            return
        try:
            self._on_event(kind, message, level)
        except Exception:  # a notification channel's problem must not stop the cycle
            log.exception("timelapse cycle: the %s event handler failed", kind)

    def _wait_until(self, when: dt.datetime) -> None:
        self._wait_s(when.timestamp() - self._clock.time_ns() / NS_PER_S)

    def _wait_s(self, seconds: float) -> None:
        if seconds > 0:
            self._clock.wait(self._stop, seconds)
