"""Audio on the wire: the tones played, the audio track's state, the audio toggle."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from node_agent.wirebase import Answer, CommandId, SessionId, Wire


class ToneKind(StrEnum):
    """Why a tone was played."""

    start = "start"  # the start beep, at the fleet's start instant
    lockview = "lockview"  # a Lock View still was saved
    degraded = "degraded"  # the node entered a degraded state


class ToneRecord(BaseModel):
    """One tone played (or that failed to play)."""

    model_config = ConfigDict(extra="ignore")

    kind: ToneKind
    reason: str | None = Field(default=None, description="The degraded state, the session...")
    requested_at_ns: int = Field(description="When the tone was asked for (local clock).")
    at_ns: int = Field(description="The local instant it was scheduled for.")
    played_at_ns: int | None = Field(default=None, description="When aplay was spawned.")
    device: str | None = None
    exit_code: int | None = Field(default=None, description="aplay's exit code; None: pending.")
    error: str | None = None


class AudioStatus(BaseModel):
    """The node's audio: tones on or off, the device, the last tones, the audio track."""

    model_config = ConfigDict(extra="ignore")

    tones: bool
    device: str | None
    last_tones: list[ToneRecord] = Field(default_factory=list, description="Newest last.")
    tones_played: dict[str, int] = Field(
        default_factory=dict, description="Tones spawned per kind since the agent started."
    )
    tone_errors: int = 0
    last_error: str | None = None
    degraded: list[str] = Field(
        default_factory=list, description="The degraded states the node is in now."
    )
    track: bool = Field(description="camera.audio: recordings carry an audio track.")
    track_device: str
    track_error: str | None = Field(
        default=None, description="Why the last recording's audio track failed, if it did."
    )


class AudioToggle(BaseModel):
    """``PUT /api/v1/audio``: record an audio track (camera.audio) or not."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool


class AudioToggleResult(BaseModel):
    """The audio track setting now in force, and where it is kept."""

    model_config = ConfigDict(extra="ignore")

    enabled: bool
    persisted: bool = Field(description="Written to the overrides file (survives a restart).")


class BeepRequest(Wire):
    """``POST /api/v1/recording/beep``: every node has armed; play the start tone at
    ``at_ns`` (fleet time)."""

    session_id: SessionId
    command_id: CommandId
    at_ns: StrictInt = Field(ge=0, le=2**63 - 1)


class BeepResult(Answer):
    """The tone is scheduled (the answer does not wait for it)."""

    session_id: str
    command_id: str
    scheduled: bool = Field(description="False: tones are off here, or the instant has passed.")
    at_ns: int = Field(description="The local instant the tone is played at.")
    reason: str | None = None
