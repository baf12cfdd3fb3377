"""``liveview:``: the size, rate and limits of the live view."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class LiveViewSettings(BaseModel):
    """``liveview:``: a low-resolution MJPEG stream of the camera, turned off by a watchdog
    when the recording needs the CPU."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="False: GET /api/v1/live.mjpg answers 404.")
    width: int = Field(default=640, ge=64, le=1920, multiple_of=2)
    height: int = Field(default=360, ge=64, le=1080, multiple_of=2)
    fps: float = Field(default=4.0, gt=0, le=10, description="Frames a second sent (10 at most).")
    jpeg_quality: int = Field(default=60, ge=10, le=95)
    max_clients: int = Field(default=2, ge=1, le=8, description="Viewers at once on this node.")
    max_cpu_percent: float = Field(
        default=85.0,
        gt=0,
        le=100,
        description="The view turns off when the node's CPU use goes over this.",
    )
    min_encode_fps_ratio: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="The view turns off when a recording encodes fewer than this share of "
        "its frame rate.",
    )
    max_dropped_frames: int = Field(
        default=10,
        ge=0,
        description="The view turns off when the recording drops more frames than this "
        "while it is watched.",
    )
    check_interval_s: float = Field(default=1.0, gt=0, le=60)
    sustain_s: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="A limit must be crossed this long without a break before the view turns "
        "off (a single slow second does not).",
    )
    cooldown_s: float = Field(
        default=60.0, ge=0, le=3600, description="After turning off, new viewers wait this long."
    )
    cpu_stat_path: Path = Field(
        default=Path("/proc/stat"), description="Where the CPU use is read (its 'cpu' line)."
    )
