"""What a recording is: who records it, which file, which profile, when it starts.

Fixed when the recording is armed; what it counted lives in ``counters``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from node_agent.recorder.counters import RecordingCounters
from node_agent.recorder.recovery import Journal
from node_agent.schemas import Position
from node_agent.settings import Profile


@dataclass(frozen=True)
class Identity:
    """Who this recorder records as."""

    node_id: str
    cam_id: str
    position: Position
    version: str


@dataclass(frozen=True)
class RecordingSpec:
    """One recording as armed: nothing here changes while it runs."""

    session_id: str
    start_at_ns: int  # when the recorder begins: the requested instant, or now if that passed
    requested_start_ns: int | None  # start_at_ns as the command asked for it
    path: Path
    profile: Profile
    bitrate_bps: int
    encoder: str
    identity: Identity
    armed_at_ns: int
    profile_notes: list[str] = field(default_factory=list)
    manifest_wanted: bool = True  # False for self-test clips
    deadline_ns: int | None = None  # the local reading at the requested fleet instant
    late_ns: int = 0  # how far past the deadline it armed
    frame_sync: str = "off"  # libcamera sync mode: off, server or client
    frame_sync_timeout_s: float = 5.0

    def journal(self, counters: RecordingCounters) -> Journal:
        """What a crash-time manifest would need, as of ``counters``."""
        clock = counters.clock_at_start
        return Journal(
            session_id=self.session_id,
            cam_id=self.identity.cam_id,
            node_id=self.identity.node_id,
            position=self.identity.position,
            file_name=self.path.name,
            scheduled_start_ns=self.requested_start_ns,
            armed_at_ns=self.armed_at_ns,
            profile=self.profile.name,
            profile_notes=self.profile_notes,
            width=self.profile.width,
            height=self.profile.height,
            fps=self.profile.fps,
            codec=self.profile.codec,
            encoder=self.encoder,
            bitrate_bps=self.bitrate_bps,
            software_version=self.identity.version,
            first_frame_ns=counters.first_frame_ns,
            clock_offset_ns=clock.offset_ns if clock else None,
            clock_synchronized=clock.synchronized if clock else False,
            clock_error_bound_ns=counters.clock_bound_ns,
            clock_reference=clock.reference if clock else None,
            start_deadline_ns=self.deadline_ns if self.requested_start_ns is not None else None,
            start_late_ns=counters.start_late_ns,
            first_frame_source=counters.first_frame_source,
            frame_sync=counters.frame_sync,
            realtime_start=counters.realtime_start,
        )
