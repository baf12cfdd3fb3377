"""The node's CPU use, from the ``cpu`` line of /proc/stat (a delta between two reads)."""

from __future__ import annotations

from pathlib import Path


class CpuMeter:
    """``percent()``: the share of time not idle since the previous call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._last: tuple[int, int] | None = None

    def _sample(self) -> tuple[int, int] | None:
        try:
            with self.path.open() as f:
                line = f.readline()
        except OSError:
            return None
        fields = line.split()
        if not fields or fields[0] != "cpu" or len(fields) < 5:
            return None
        try:
            ticks = [int(v) for v in fields[1:9]]
        except ValueError:
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        return sum(ticks), idle

    def percent(self) -> float | None:
        """CPU use (0-100) since the last call; None on the first call or without a reading."""
        sample = self._sample()
        if sample is None:
            return None
        last, self._last = self._last, sample
        if last is None:
            return None
        total, idle = sample[0] - last[0], sample[1] - last[1]
        if total <= 0:
            return None
        return max(0.0, min(100.0, 100.0 * (total - idle) / total))
