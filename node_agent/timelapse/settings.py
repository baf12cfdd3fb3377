"""Timelapse settings (``timelapse:`` in the agent's YAML, ``CAMFLEET_TIMELAPSE__*`` in the env).

Defaults come from the timelapse seeds: one still a minute, JPEG quality 85, stop
writing at 90 % disk use and warn at 85 %, clean-up off (30 days kept when on),
30 s per capture at most, reconnect backoff 5 s doubling up to 300 s.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from node_agent.dashcam.settings import UploadSettings

# Changed by SIGHUP on a running agent; everything else needs a restart.
RELOADABLE_FIELDS = frozenset(
    {
        "interval_s",
        "jpeg_quality",
        "warn_percent",
        "stop_percent",
        "cleanup_enabled",
        "retention_days",
        "cleanup_disk_percent",
        "capture_timeout_s",
        "backoff_base_s",
        "backoff_max_s",
        "gap_tracking",
        "late_after_s",
    }
)

# A still is at most this size unless width/height say otherwise (the research:
# "capture at native resolution up to 1080p, downscale if the camera provides higher").
MAX_DEFAULT_WIDTH = 1920
MAX_DEFAULT_HEIGHT = 1080


class TimelapseSettings(BaseModel):
    """How the timelapse captures, where its stills go and how the disk is kept."""

    model_config = ConfigDict(extra="forbid")

    autostart: bool = Field(
        default=False, description="Start the timelapse when the agent starts (e.g. at boot)."
    )
    interval_s: float = Field(default=60.0, ge=0.05, le=86_400)
    directory: Path | None = Field(
        default=None, description="Where stills go; default <data_dir>/timelapse."
    )
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    width: int | None = Field(
        default=None,
        ge=16,
        le=7680,
        multiple_of=2,
        description="Still size; default: the camera's first profile, at most 1920x1080.",
    )
    height: int | None = Field(default=None, ge=16, le=4320, multiple_of=2)
    warn_percent: float = Field(
        default=85.0, gt=0, le=100, description="Log a warning from this disk use on."
    )
    stop_percent: float = Field(
        default=90.0, gt=0, le=100, description="Refuse to write stills from this disk use on."
    )
    cleanup_enabled: bool = Field(
        default=False, description="Delete the oldest whole day folders (never today's)."
    )
    retention_days: int = Field(
        default=30, ge=1, le=36_500, description="With clean-up on: days kept, today included."
    )
    cleanup_disk_percent: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="With clean-up on: also delete the oldest days while disk use is above this.",
    )
    capture_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="A capture that takes longer counts as a failure."
    )
    backoff_base_s: float = Field(default=5.0, gt=0, le=3600)
    backoff_max_s: float = Field(default=300.0, gt=0, le=86_400)
    gap_tracking: bool = Field(
        default=False, description="Log every capture and keep a list of missed and late ones."
    )
    late_after_s: float = Field(
        default=1.0, gt=0, description="With gap tracking: a capture this late is listed."
    )
    # -- the daily cycle (docs/timelapse-cycle.md) --------------------------------------------
    window: Literal["none", "fixed", "sun"] = Field(
        default="none",
        description="The capture window of each day: none (capture whenever started, no "
        "daily video), fixed (start_time to end_time) or sun (sunrise to sunset at "
        "latitude/longitude). With a window the agent runs the daily cycle at start.",
    )
    start_time: dt.time | None = Field(
        default=None, description="window: fixed: local start, HH:MM (e.g. 07:15)."
    )
    end_time: dt.time | None = Field(
        default=None, description="window: fixed: local end, HH:MM, after start_time."
    )
    latitude: float | None = Field(default=None, ge=-90, le=90, description="window: sun.")
    longitude: float | None = Field(default=None, ge=-180, le=180, description="window: sun.")
    sunrise_offset_min: float = Field(
        default=0.0, ge=-720, le=720, description="window: sun: minutes after sunrise to start."
    )
    sunset_offset_min: float = Field(
        default=0.0, ge=-720, le=720, description="window: sun: minutes after sunset to end."
    )
    timezone: str | None = Field(
        default=None,
        description="IANA zone the window's times are in (e.g. Europe/Berlin); default the "
        "system's. Stills are named in the system's zone, so set it only to that zone.",
    )
    video_fps: float = Field(
        default=24.0, ge=1, le=120, description="Frames per second of the end-of-day video."
    )
    render_nice: int = Field(
        default=19, ge=0, le=19, description="Niceness of the end-of-day render's process."
    )
    backup: UploadSettings | None = Field(
        default=None,
        description="Where the end-of-day video goes (rsync over ssh, confirmed by the "
        "NAS's SHA-256; the same keys as dashcam.upload); None: no backup.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(
                f"timelapse.timezone {value!r} is not a known IANA zone (e.g. Europe/Berlin)"
            ) from err
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TimelapseSettings:
        if self.warn_percent > self.stop_percent:
            raise ValueError(
                f"timelapse.warn_percent ({self.warn_percent:g}) is above "
                f"timelapse.stop_percent ({self.stop_percent:g})"
            )
        if (self.width is None) != (self.height is None):
            raise ValueError("set both timelapse.width and timelapse.height, or neither")
        if self.backoff_base_s > self.backoff_max_s:
            raise ValueError("timelapse.backoff_base_s is above timelapse.backoff_max_s")
        if self.window == "fixed":
            missing = [k for k in ("start_time", "end_time") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"timelapse.window fixed needs timelapse.{' and timelapse.'.join(missing)} (HH:MM)"
                )
            assert self.start_time is not None and self.end_time is not None
            if self.end_time <= self.start_time:
                raise ValueError(
                    f"timelapse.end_time ({self.end_time:%H:%M}) is not after "
                    f"timelapse.start_time ({self.start_time:%H:%M}); a window ends the same day"
                )
        if self.window == "sun":
            missing = [k for k in ("latitude", "longitude") if getattr(self, k) is None]
            if missing:
                raise ValueError(
                    f"timelapse.window sun needs timelapse.{' and timelapse.'.join(missing)} "
                    "(decimal degrees, north and east positive)"
                )
        return self

    def still_size(self, camera_width: int, camera_height: int) -> tuple[int, int]:
        """The size of a still: width/height when set, else the camera's size within 1080p."""
        if self.width is not None and self.height is not None:
            return self.width, self.height
        return fit_within(camera_width, camera_height, MAX_DEFAULT_WIDTH, MAX_DEFAULT_HEIGHT)


def fit_within(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """``width x height`` scaled down (aspect kept, even sides) to fit the box; never up."""
    scale = min(1.0, max_width / width, max_height / height)
    if scale >= 1.0:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)
