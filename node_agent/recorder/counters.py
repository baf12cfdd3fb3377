"""What a recording counted: frames, drops, rate, bytes, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.schemas import ClockStatus, FrameSyncReport


@dataclass
class RecordingCounters:
    """Written by the recording's thread only; read (racily, each field whole) by status."""

    first_frame_ns: int | None = None
    last_frame_ns: int | None = None
    frames: int = 0
    dropped_frames: int = 0
    encode_fps: float = 0.0
    clock_at_start: ClockStatus | None = None
    clock_bound_ns: int | None = None  # the clock's error bound when the recording began
    start_late_ns: int = 0
    first_frame_source: str = "capture"
    frame_sync: FrameSyncReport | None = None
    realtime_start: bool = False
    size_bytes: int = 0
    sha256: str = ""
    cancelled: bool = False
    error: str | None = None
    stop_reason: str = "stopped"

    def duration_s(self, fps: float) -> float:
        """First frame to the end of the last one; 0 without frames."""
        if not self.frames or self.first_frame_ns is None:
            return 0.0
        last = self.last_frame_ns or self.first_frame_ns
        return round((last - self.first_frame_ns) / 1e9 + 1 / fps, 6)

    def failed(self, reason: str) -> None:
        """The recording ended on an error (the first one is kept)."""
        self.error = self.error or reason
        self.stop_reason = f"error: {self.error}"


def measured_bitrate_bps(written_bytes: int, first_frame_ns: int | None, now_ns: int) -> int | None:
    """Bits written per second since the first frame; None before a frame or a whole ms."""
    if first_frame_ns is None or now_ns - first_frame_ns < 1_000_000:
        return None
    return round(written_bytes * 8 * 1e9 / (now_ns - first_frame_ns))
