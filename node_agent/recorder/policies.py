"""The recorder's pure policies: frame timestamps and drops, the encode rate, the disk
reserve and the probation of a new profile. No I/O and no clock reads: each takes the
instant it is asked about, so table tests need neither a camera nor time passing."""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass
class FrameTimeline:
    """Turns capture instants into encoder pts at ``fps`` and counts the frames skipped.

    A frame's pts is its distance from the first frame in frame periods; a gap of more
    than one period is counted as dropped frames, and pts never repeats or goes back.
    """

    fps: float
    first_ns: int | None = None
    last_pts: int = -1
    dropped: int = 0

    def place(self, capture_ns: int) -> int:
        """The pts of a frame captured at ``capture_ns`` (the first frame is 0)."""
        if self.first_ns is None:
            self.first_ns = capture_ns
        pts = round((capture_ns - self.first_ns) * self.fps / NS_PER_S)
        if pts <= self.last_pts:
            pts = self.last_pts + 1
        if self.last_pts >= 0 and pts > self.last_pts + 1:
            self.dropped += pts - self.last_pts - 1
        self.last_pts = pts
        return pts


@dataclass
class RateWindow:
    """Frames per second over windows of about a second."""

    start_ns: int
    frames: int = 0

    def tick(self, now_ns: int) -> float | None:
        """Count one frame; the rate when a window closed, else None."""
        self.frames += 1
        elapsed = now_ns - self.start_ns
        if elapsed < NS_PER_S:
            return None
        rate = round(self.frames * 1e9 / elapsed, 2)
        self.start_ns, self.frames = now_ns, 0
        return rate


def reserve_bytes(reserve_s: float, bitrate_bps: int) -> int:
    """The bytes ``reserve_s`` seconds take at ``bitrate_bps``: what must stay free."""
    return int(reserve_s * bitrate_bps / 8)


# How a stop for lack of disk begins (the notifications tell it apart by this).
DISK_RESERVE_REACHED = "disk reserve reached"


def reserve_reached(free_bytes: int, reserve_s: float, bitrate_bps: int) -> str | None:
    """Why the recording must stop now for lack of disk, or None while there is room."""
    if free_bytes >= reserve_bytes(reserve_s, bitrate_bps):
        return None
    return (
        f"{DISK_RESERVE_REACHED}: {free_bytes / 1e6:.1f} MB free, less than "
        f"{reserve_s:g} s at {bitrate_bps / 1e6:g} Mb/s"
    )


def probation_verdict(
    frames: int,
    dropped: int,
    max_drop_ratio: float,
    probation_s: float,
    encode_fps: float,
    fps: float,
) -> str | None:
    """Why the profile failed its probation (too many drops), or None when it held."""
    expected = frames + dropped
    ratio = dropped / expected if expected else 0.0
    if ratio <= max_drop_ratio:
        return None
    return (
        f"dropped {ratio:.0%} of frames in the first {probation_s:g} s "
        f"(encode {encode_fps:.1f} fps of {fps:g})"
    )
