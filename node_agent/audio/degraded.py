"""Degraded states and their tone: which states the node is in (pure), and when a tone is
due (entering a state, at most once per ``audio.degraded_repeat_s`` for each state).

The states: ``temperature`` (CPU at or over gates.max_cpu_temp_c), ``battery`` (the power
monitor at warn or worse), ``camera`` (the camera did not open, or has no power), ``disk``
(warn or critical) and ``clock`` (unsynchronized, or its error bound over
gates.max_clock_error_ms).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from node_agent.power.schemas import PowerLevel
from node_agent.schemas import DiskLevel, NodeStatus
from node_agent.settings import GateSettings

BATTERY_DEGRADED = frozenset(
    {PowerLevel.warn, PowerLevel.low, PowerLevel.disconnect, PowerLevel.shutdown}
)


def degraded_states(
    status: NodeStatus, temp_c: float | None, gates: GateSettings
) -> dict[str, str]:
    """Each degraded state the node is in, with why."""
    out: dict[str, str] = {}
    if temp_c is not None and temp_c >= gates.max_cpu_temp_c:
        out["temperature"] = f"CPU at {temp_c:.1f} °C (limit {gates.max_cpu_temp_c:g} °C)"
    power = status.power
    if power is not None and power.level in BATTERY_DEGRADED:
        out["battery"] = f"battery {power.level.value}: {power.reason}"
    rec = status.recorder
    if rec.last_error is not None and rec.last_error.startswith("camera:"):
        out["camera"] = rec.last_error
    elif power is not None and power.camera_powered is False:
        out["camera"] = "the camera has no power"
    if status.disk.level in (DiskLevel.warn, DiskLevel.critical):
        out["disk"] = f"disk {status.disk.level.value}"
    clock = status.clock
    limit_ns = gates.max_clock_error_ms * 1e6
    if not clock.synchronized:
        out["clock"] = f"clock unsynchronized ({clock.error or 'no synchronised source'})"
    elif clock.error_bound_ns is not None and clock.error_bound_ns > limit_ns:
        out["clock"] = (
            f"clock error bound {clock.error_bound_ns / 1e6:.2f} ms over "
            f"{gates.max_clock_error_ms:g} ms"
        )
    return out


class DegradedWatcher:
    """Decides when a degraded tone is due, from one observation of the states to the next."""

    def __init__(self, repeat_s: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.repeat_s = repeat_s
        self._monotonic = monotonic
        self.current: dict[str, str] = {}
        self._last_tone: dict[str, float] = {}

    def observe(self, states: Mapping[str, str]) -> list[str]:
        """The states just entered whose last tone is ``repeat_s`` old or more (or never
        was): a tone is due for them. Staying in a state is never toned again."""
        now = self._monotonic()
        due = []
        for name in sorted(states):
            if name in self.current:
                continue
            last = self._last_tone.get(name)
            if last is None or now - last >= self.repeat_s:
                self._last_tone[name] = now
                due.append(name)
        self.current = dict(states)
        return due
