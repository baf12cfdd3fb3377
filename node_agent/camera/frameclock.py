"""Frame timestamps: which clock a driver stamps frames on, and how to turn them into UTC.

Camera drivers stamp each frame in the kernel. V4L2 drivers (uvcvideo, unicam,
rp1-cfe) use CLOCK_MONOTONIC; libcamera passes that stamp on as SensorTimestamp
(its documentation says CLOCK_BOOTTIME, but on a Pi the value is the driver's
CLOCK_MONOTONIC stamp, and picamera2's own `flush` compares it with
time.monotonic_ns()). The two clocks differ only by time spent suspended. The
clock is therefore recognised from the first timestamp rather than assumed.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)

_CLOCKS = (
    ("monotonic", time.CLOCK_MONOTONIC),
    ("boottime", time.CLOCK_BOOTTIME),
    ("realtime", time.CLOCK_REALTIME),
)
# How far from "now" a first timestamp may be and still be taken as being on a clock:
# queued frames are at most a second or so old, and nothing is from the future.
_RECENT_NS = 10_000_000_000
_AHEAD_NS = 1_000_000_000


def wall_offset_ns(clock_id: int) -> int:
    """UTC wall clock minus ``clock_id`` (ns), from the tightest of a few paired reads."""
    best_gap, best_offset = None, 0
    for _ in range(5):
        before = time.clock_gettime_ns(clock_id)
        wall = time.time_ns()
        after = time.clock_gettime_ns(clock_id)
        if best_gap is None or after - before < best_gap:
            best_gap, best_offset = after - before, wall - (before + after) // 2
    return best_offset


def classify_timestamp(ts_ns: int, now_ns: dict[str, int]) -> str | None:
    """The clock (monotonic, boottime, realtime) on which ``ts_ns`` is a recent instant."""
    for name, _ in _CLOCKS:
        now = now_ns.get(name)
        if now is not None and now - _RECENT_NS <= ts_ns <= now + _AHEAD_NS:
            return name
    return None


class FrameClock:
    """Turns a device's frame timestamps into UTC ns.

    The first timestamp decides the clock; the offset to the wall clock is measured
    then and again at ``anchor()`` (the recorder's start), and held in between so a
    recording's timeline has no jumps when chrony steps the wall clock. Timestamps on
    no known clock (or none at all) fall back to the arrival time, with one warning.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.kind: str | None = None
        self._offset_ns = 0

    def reset(self) -> None:
        """Forget the clock; the next timestamp decides again."""
        self.kind = None

    def anchor(self) -> None:
        """Measure the offset to the wall clock again (a step since open is taken in)."""
        for name, clock_id in _CLOCKS:
            if name == self.kind:
                self._offset_ns = wall_offset_ns(clock_id)

    def to_wall_ns(self, ts_ns: int | None, arrival_wall_ns: int) -> int:
        """The UTC instant of a frame stamped ``ts_ns`` that reached us at ``arrival_wall_ns``."""
        if self.kind is None:
            self._decide(ts_ns)
        if self.kind == "arrival" or ts_ns is None:
            return arrival_wall_ns
        return ts_ns + self._offset_ns

    def _decide(self, ts_ns: int | None) -> None:
        kind = None
        if ts_ns is not None:
            kind = classify_timestamp(
                ts_ns, {name: time.clock_gettime_ns(cid) for name, cid in _CLOCKS}
            )
        if kind is None:
            log.warning(
                "%s: frame timestamps (%s) are on no clock this host knows; frames are "
                "stamped when they arrive, which adds the transfer and decode delay",
                self.source,
                ts_ns,
            )
            self.kind = "arrival"
            return
        self.kind = kind
        self.anchor()
        log.info("%s: frame timestamps are on CLOCK_%s", self.source, kind.upper())
