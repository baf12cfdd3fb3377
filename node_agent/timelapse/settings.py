"""Timelapse settings (``timelapse:`` in the agent's YAML, ``CAMFLEET_TIMELAPSE__*`` in the env).

Defaults come from the timelapse seeds: one still a minute, JPEG quality 85, stop
writing at 90 % disk use and warn at 85 %, clean-up off (30 days kept when on),
30 s per capture at most, reconnect backoff 5 s doubling up to 300 s.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
