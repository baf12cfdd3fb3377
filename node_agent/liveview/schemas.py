"""The live view's part of the node status."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

LiveState = Literal["disabled", "off", "streaming", "cooling"]


class LiveViewStatus(BaseModel):
    """What the live view does now, and why it last turned itself off."""

    state: LiveState = Field(
        description="disabled (liveview.enabled false), off (nobody watching), streaming, "
        "or cooling (the watchdog turned it off; new viewers are refused for a while)."
    )
    clients: int = 0
    max_clients: int = 0
    width: int = 0
    height: int = 0
    fps: float = Field(default=0.0, description="The configured frame rate.")
    fps_served: float = Field(default=0.0, description="Frames a second sent lately.")
    frames_served: int = Field(default=0, description="Frames sent since the agent started.")
    source: str | None = Field(
        default=None,
        description="Where the frames come from: lores (the camera's second stream), "
        "recording (the recording's frames, scaled), or idle (an idle synthetic camera).",
    )
    off_reason: str | None = Field(
        default=None, description="Why the watchdog last turned the view off."
    )
    cooldown_s: float = Field(default=0.0, description="Seconds until viewers are let in again.")
