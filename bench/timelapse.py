"""Benchmark 4, timelapse schedule: how far each capture starts from its scheduled instant."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import BenchError, median, percentile
from node_agent.camera.lock import CameraLock
from node_agent.timelapse.events import TimelapseEvent
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.settings import TimelapseSettings


@dataclass
class TimelapseResult:
    """One run: the schedule error of every slot, and what the captures cost."""

    slots: int
    interval_s: float
    width: int
    height: int
    errors_ms: list[float] = field(default_factory=list)  # fired - scheduled, per slot
    capture_ms: list[float] = field(default_factory=list)  # camera + JPEG + write, per still
    stills: int = 0
    missed: int = 0
    scheduled_exact: bool = True  # every slot n was scheduled at t0 + n * interval
    wall_s: float = 0.0

    def error_ms(self, p: float) -> float:
        return percentile(self.errors_ms, p)

    @property
    def drift_ms(self) -> float:
        """Median error of the last tenth of the run minus that of the first tenth."""
        tenth = max(1, len(self.errors_ms) // 10)
        return median(self.errors_ms[-tenth:]) - median(self.errors_ms[:tenth])

    @property
    def naive_end_late_s(self) -> float:
        """Where a loop that slept one interval after each capture would have ended up:
        every capture's own time and every wake-up delay add to the next one's start."""
        return (sum(self.capture_ms) + sum(self.errors_ms)) / 1000


class _Slots:
    def __init__(self) -> None:
        self.events: list[TimelapseEvent] = []
        self._cv = threading.Condition()

    def __call__(self, event: TimelapseEvent) -> None:
        if event.kind in ("capture", "skip"):
            with self._cv:
                self.events.append(event)
                self._cv.notify_all()

    def wait(self, count: int, timeout_s: float) -> bool:
        with self._cv:
            return self._cv.wait_for(lambda: len(self.events) >= count, timeout_s)


def run_timelapse(
    root: Path, slots: int, interval_s: float, width: int, height: int
) -> TimelapseResult:
    """Run the agent's Timelapse (synthetic camera, real JPEG files) for ``slots`` slots."""
    base = root / "timelapse"
    observer = _Slots()
    timelapse = Timelapse(
        TimelapseSettings(interval_s=interval_s, directory=base / "stills"),
        source="synthetic",
        camera_width=width,
        camera_height=height,
        camera_fps=30.0,
        cam_id="BENCH",
        data_dir=base,
        lock=CameraLock(base / "camera.lock"),
        observer=observer,
    )
    t0 = time.monotonic()
    timelapse.start()
    try:
        done = observer.wait(slots, timeout_s=slots * interval_s * 2 + 30)
    finally:
        status = timelapse.stop()
    if not done:
        raise BenchError(
            f"the timelapse took {len(observer.events)} of {slots} slots in time "
            f"(last error: {status.last_error})"
        )
    events = observer.events[:slots]
    first, first_index = events[0].scheduled_ns or 0, events[0].index or 0
    interval_ns = round(interval_s * 1e9)
    result = TimelapseResult(slots, interval_s, width, height, wall_s=time.monotonic() - t0)
    for e in events:
        assert e.index is not None and e.scheduled_ns is not None and e.fired_ns is not None
        result.errors_ms.append((e.fired_ns - e.scheduled_ns) / 1e6)
        result.scheduled_exact &= e.scheduled_ns == first + (e.index - first_index) * interval_ns
        if e.kind == "capture" and e.duration_s is not None:
            result.capture_ms.append(e.duration_s * 1000)
    result.stills = len(result.capture_ms)
    result.missed = status.missed
    return result
