"""Settings of the node's tones (start beep, Lock View, degraded states)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AudioSettings(BaseModel):
    """``audio:``: tones played through ``aplay``; the recording's audio track is
    ``camera.audio``."""

    model_config = ConfigDict(extra="forbid")

    tones: bool = Field(default=True, description="False: no tone is ever played.")
    aplay_path: str = "aplay"
    device: str | None = Field(
        default=None, description="ALSA playback device (aplay -D), e.g. 'plughw:1,0'."
    )
    start_tone_hz: float = Field(default=1000.0, ge=50, le=20_000)
    start_tone_ms: int = Field(default=200, ge=10, le=5000)
    lockview_tone_hz: float = Field(default=1500.0, ge=50, le=20_000)
    lockview_tone_ms: int = Field(default=120, ge=10, le=5000)
    degraded_tone_hz: float = Field(default=440.0, ge=50, le=20_000)
    degraded_tone_ms: int = Field(default=80, ge=10, le=5000)
    degraded_repeat_s: float = Field(
        default=60.0, ge=1, le=86_400, description="At most one degraded tone per state this often."
    )
    volume: float = Field(default=0.5, gt=0, le=1)
