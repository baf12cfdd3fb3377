"""The timelapse part of the agent's wire contract.

``node_agent.schemas`` (``NodeStatus.timelapse``) and the coordinator import these
models, so this module imports nothing from the agent or the coordinator. Times are
UTC nanoseconds since the epoch (``*_ns``); durations carry their unit in the name.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import Field, field_validator

from node_agent.wirebase import Answer, Wire

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class TimelapseState(StrEnum):
    """What the timelapse is doing."""

    stopped = "stopped"
    starting = "starting"  # running; the camera is being opened
    capturing = "capturing"  # the camera is open; stills are taken on schedule
    reconnecting = "reconnecting"  # the camera failed; waiting to open it again
    disk_full = "disk_full"  # running, but refusing to write above stop_percent


class CycleState(StrEnum):
    """Where the daily cycle is (the observability spec's status values)."""

    idle = "idle"  # outside the window, the day's work done (or no window today)
    waiting = "waiting"  # before the day's window (waiting for sunrise)
    capturing = "capturing"  # inside the window
    creating_video = "creating_video"  # rendering the day's stills (low priority)
    backing_up = "backing_up"  # sending the video to the backup target (rsync)
    error = "error"  # the day's video or backup failed (see ``error``); the next day runs


class TimelapseDay(Answer):
    """One day's plan (the status file's ``today``, but ``photos_captured``)."""

    date: str = Field(description="YYYY-MM-DD, the local date.")
    window: str = Field(description="none, fixed or sun.")
    start_time: str | None = Field(default=None, description="HH:MM:SS local; None: no window.")
    end_time: str | None = Field(default=None, description="HH:MM:SS local; None: no window.")
    start_ns: int | None = Field(default=None, description="The window's start (UTC).")
    end_ns: int | None = Field(default=None, description="The window's end (UTC).")
    interval_seconds: float
    expected_photos: int = Field(description="Slots in the window: ceil(window / interval).")
    note: str = Field(default="", description="e.g. polar day or polar night.")


class TimelapseCycle(Answer):
    """The daily cycle: state, today's plan, the last video's fate."""

    state: CycleState
    since_ns: int = Field(description="When the cycle entered this state (UTC).")
    today: TimelapseDay | None = None
    error: str | None = Field(default=None, description="Why the state is error.")
    last_video_backed_up: bool | None = Field(
        default=None, description="None: no backup configured, or no video yet."
    )
    last_video_backed_up_to: str | None = None
    last_render_cpu_s: float | None = Field(
        default=None, description="CPU seconds the last end-of-day render took."
    )


class DiskState(StrEnum):
    """Disk use against the timelapse thresholds."""

    ok = "ok"
    warning = "warning"  # at or above warn_percent
    full = "full"  # at or above stop_percent: no still is written


class TimelapseDisk(Answer):
    """The disk that holds the stills."""

    path: str
    total_bytes: int
    free_bytes: int
    used_percent: float
    warn_percent: float
    stop_percent: float
    state: DiskState


class TimelapseGap(Answer):
    """A stretch of the schedule without a still, or a still taken late."""

    kind: str = Field(description="'missed' (no still for `slots` slots) or 'late'.")
    scheduled_ns: int = Field(description="When the first slot concerned was due (UTC).")
    slots: int = Field(description="Slots without a still (1 for a late capture).")
    late_ms: float | None = Field(default=None, description="For 'late': how late it started.")
    reason: str


class TimelapseVideo(Answer):
    """An MP4 rendered from one day's stills."""

    day: str = Field(description="YYYY-MM-DD (the node's local date of the stills).")
    file_name: str = Field(description="Relative to the timelapse folder.")
    frames: int
    skipped_stills: int = Field(description="Stills that could not be read (left out).")
    fps: float
    width: int
    height: int
    duration_s: float
    size_bytes: int
    encoder: str
    rendered_ns: int


class TimelapseStatus(Answer):
    """``GET /api/v1/timelapse``, and ``NodeStatus.timelapse``."""

    running: bool
    state: TimelapseState
    interval_s: float
    jpeg_quality: int
    width: int
    height: int
    directory: str
    started_ns: int | None = None
    captures_today: int = Field(description="Stills written today (local date), this run or not.")
    captures_total: int = Field(description="Stills written since the agent started.")
    skipped: int = Field(description="Slots skipped because that second's still already existed.")
    skipped_disk_full: int = Field(description="Slots skipped because the disk was full.")
    missed: int = Field(description="Slots that passed while the camera failed or was busy.")
    failures: int = Field(description="Camera and storage failures since the agent started.")
    consecutive_failures: int
    last_error: str | None = None
    last_capture_ns: int | None = None
    last_capture_file: str | None = Field(
        default=None, description="Relative to the timelapse folder, e.g. 2026/02/16/143000.jpg."
    )
    last_capture_ms: float | None = Field(
        default=None, description="How long the last capture took (camera, JPEG, write)."
    )
    next_capture_ns: int | None = Field(
        default=None, description="When the next still (or camera retry) is due."
    )
    disk: TimelapseDisk | None = Field(default=None, description="None when it cannot be read.")
    cleanup_enabled: bool
    retention_days: int
    deleted_days: int = Field(
        description="Day folders deleted by clean-up since the agent started."
    )
    gap_tracking: bool
    gaps: list[TimelapseGap] = Field(
        default_factory=list, description="The most recent gaps (with gap tracking on)."
    )
    last_video: TimelapseVideo | None = None
    cycle: TimelapseCycle | None = Field(
        default=None, description="The daily cycle, when a capture window is configured."
    )


class TimelapseStartRequest(Wire):
    """``POST /api/v1/timelapse/start`` (the body may be left out)."""

    interval_s: float | None = Field(
        default=None,
        ge=0.05,
        le=86_400,
        description="Capture interval for this run; default: the configured one. A SIGHUP "
        "reload sets the configured one again.",
    )


class TimelapseRenderRequest(Wire):
    """``POST /api/v1/timelapse/render``."""

    day: str = Field(pattern=DAY_PATTERN, description="YYYY-MM-DD, the local date of the stills.")
    fps: float = Field(default=24.0, ge=1, le=120)

    @field_validator("day")
    @classmethod
    def _a_calendar_day(cls, value: str) -> str:
        try:
            dt.date.fromisoformat(value)
        except ValueError as err:
            raise ValueError(f"{value} is not a calendar day (YYYY-MM-DD)") from err
        return value

    @property
    def date(self) -> dt.date:
        """The day as a date."""
        return dt.date.fromisoformat(self.day)
