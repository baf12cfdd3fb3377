"""The status file's document: its status values and fields (what ``GET /status`` answers).

Programs outside camfleet may add fields (``update_status``), so every model here keeps
fields it does not know, and every field may be null or absent.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AgentStatus(StrEnum):
    """What the node is doing, in the observability spec's words."""

    idle = "idle"  # nothing running: outside capture hours
    waiting = "waiting"  # the daily timelapse is set, waiting for its window (sunrise)
    capturing = "capturing"  # taking stills (timelapse) or recording video
    creating_video = "creating_video"  # encoding the day's stills into a video
    backing_up = "backing_up"  # copying the video (and stills) off the node
    uploading = "uploading"  # uploading the video somewhere
    error = "error"  # something is wrong: see ``errors``


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class StatusToday(_Open):
    """Today's capture plan and progress (local date); reset when the date changes."""

    date: str | None = Field(default=None, description="YYYY-MM-DD, the node's local date.")
    photos_captured: int | None = Field(default=None, description="Stills written today.")
    expected_photos: int | None = Field(
        default=None, description="Stills today's window and interval give (the daily cycle)."
    )
    start_time: str | None = Field(default=None, description="HH:MM:SS, local: window opens.")
    end_time: str | None = Field(default=None, description="HH:MM:SS, local: window closes.")
    interval_seconds: float | None = None


class StatusCapture(_Open):
    """The last timelapse capture, taken or failed."""

    time: str | None = Field(default=None, description="ISO 8601, local with offset.")
    filename: str | None = Field(
        default=None, description="Relative to the timelapse folder; null for a failure."
    )
    success: bool | None = None
    duration_ms: float | None = None


class StatusVideo(_Open):
    """The last timelapse video rendered."""

    date: str | None = Field(default=None, description="YYYY-MM-DD of its stills.")
    filename: str | None = None
    duration_seconds: float | None = None
    photos_used: int | None = None
    backed_up: bool | None = None


class StatusError(_Open):
    """One error of today (the list keeps the last ``MAX_ERRORS``)."""

    time: str | None = None
    source: str | None = Field(default=None, description="e.g. 'timelapse', 'recorder'.")
    message: str | None = None


class StatusDocument(_Open):
    """The status file (``status_file``, default /run/camfleet/status.json)."""

    device_id: str | None = Field(default=None, description="The node id.")
    status: AgentStatus | None = None
    recording: bool | None = Field(
        default=None, description="The recorder is armed, recording or finishing a file."
    )
    updated_at: str | None = Field(default=None, description="Last rewrite, local with offset.")
    uptime_seconds: float | None = Field(default=None, description="Since the system booted.")
    agent_uptime_seconds: float | None = Field(default=None, description="Since the agent began.")
    disk_percent: float | None = Field(default=None, description="Use of the stills' disk.")
    disk_free_bytes: int | None = None
    cpu_temperature_celsius: float | None = None
    today: StatusToday | None = None
    last_capture: StatusCapture | None = None
    last_video: StatusVideo | None = None
    errors: list[StatusError | str] | None = Field(
        default=None, description="Today's errors, oldest first (another program may add strings)."
    )
