"""The power policy: a pure function from one reading and the last decision to the next.

The loop that acts on it (``node_agent.power.monitor``) does what a change of level
asks: entering ``disconnect`` stops the recording and powers the camera down, leaving it
powers the camera up again, entering ``shutdown`` finishes every file and shuts down.

Hysteresis: a level is left for a less severe one only when the battery is
``hysteresis_percent`` above the threshold it crossed, so 49.9, 50.1, 49.8, 50.2 %
at a 50 % threshold is one change, not four. Entering a more severe level is at once,
except ``shutdown``, which needs ``confirm_readings`` readings in a row under its
threshold (one glitched reading never ends a match), and once decided, stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.power.schemas import SEVERITY, PowerLevel, PowerReading
from node_agent.power.settings import PowerSettings


@dataclass(frozen=True)
class Thresholds:
    """The percentages, from the settings (``power.*`` and ``gates.min_battery_percent``)."""

    warn: float = 60.0
    refuse_start: float = 55.0
    disconnect: float = 50.0
    shutdown: float = 25.0
    hysteresis: float = 3.0
    confirm_readings: int = 2
    stale_after_s: float = 120.0


@dataclass(frozen=True)
class Decision:
    """The policy's answer: the level, why, and what it implies."""

    level: PowerLevel
    reason: str
    under_shutdown: int = 0  # readings in a row under shutdown_percent

    @property
    def camera_on(self) -> bool | None:
        """Whether the camera may have power; None when the policy has no say (unknown)."""
        if self.level == PowerLevel.unknown:
            return None
        return self.level not in (PowerLevel.disconnect, PowerLevel.shutdown)

    @property
    def may_start(self) -> bool:
        """Whether a recording may start at this level."""
        return self.level not in (PowerLevel.low, PowerLevel.disconnect, PowerLevel.shutdown)

    @property
    def may_upload(self) -> bool:
        """Whether the dashcam may switch the camera to data mode and upload."""
        return self.level in (PowerLevel.mains, PowerLevel.ac, PowerLevel.ok, PowerLevel.warn)


START = Decision(PowerLevel.unknown, "no battery reading yet")


def thresholds(power: PowerSettings, min_battery_percent: float) -> Thresholds:
    """The thresholds of ``power:`` and ``gates.min_battery_percent`` (the start gate)."""
    return Thresholds(
        warn=power.warn_percent,
        refuse_start=min_battery_percent,
        disconnect=power.disconnect_percent,
        shutdown=power.shutdown_percent,
        hysteresis=power.hysteresis_percent,
        confirm_readings=power.confirm_readings,
        stale_after_s=power.stale_after_s,
    )


def raw_level(percent: float, t: Thresholds) -> PowerLevel:
    """The level of ``percent`` with no history."""
    if percent < t.shutdown:
        return PowerLevel.shutdown
    if percent < t.disconnect:
        return PowerLevel.disconnect
    if percent < t.refuse_start:
        return PowerLevel.low
    if percent < t.warn:
        return PowerLevel.warn
    return PowerLevel.ok


def _rank(level: PowerLevel) -> int:
    return SEVERITY.index(level)


def decide(
    reading: PowerReading | None,
    now_ns: int,
    prev: Decision,
    t: Thresholds,
    provider: str,
) -> Decision:
    """The next decision after ``reading`` (None: no provider call has answered yet)."""
    if prev.level == PowerLevel.shutdown:
        return prev  # the machine is going down; nothing brings it back
    if provider == "none":
        return Decision(PowerLevel.mains, "no battery provider: mains power assumed")
    if reading is None:
        return Decision(PowerLevel.unknown, "no battery reading yet")
    age_s = (now_ns - reading.read_at_ns) / 1e9
    if not reading.ok:
        return Decision(
            PowerLevel.unknown,
            f"battery provider {reading.provider} failed: {reading.error}; nothing is done "
            "on a failed reading",
        )
    if age_s > t.stale_after_s:
        return Decision(
            PowerLevel.unknown,
            f"the last battery reading is {age_s:.0f} s old (over {t.stale_after_s:g} s); "
            "nothing is done on old news",
        )
    if reading.on_ac:
        pct = f" (battery {reading.percent:.0f} %)" if reading.percent is not None else ""
        return Decision(PowerLevel.ac, f"on AC power{pct}: battery thresholds ignored")
    if reading.percent is None:
        return Decision(PowerLevel.unknown, f"{reading.provider} gave no battery percentage")
    p = reading.percent
    raw = raw_level(p, t)
    under = prev.under_shutdown + 1 if raw == PowerLevel.shutdown else 0
    if raw == PowerLevel.shutdown and under < t.confirm_readings:
        raw = PowerLevel.disconnect  # not yet confirmed: act as for disconnect meanwhile
    if prev.level in SEVERITY and _rank(raw) < _rank(prev.level):
        # Leaving a level for a less severe one needs the hysteresis margin.
        eased = raw_level(max(0.0, p - t.hysteresis), t)
        level = SEVERITY[min(_rank(prev.level), _rank(eased))]
    else:
        level = raw
    return Decision(level, _reason(level, p, t, under), under)


def _reason(level: PowerLevel, p: float, t: Thresholds, under: int) -> str:
    at = f"battery at {p:.1f} %"
    limit = {
        PowerLevel.warn: t.warn,
        PowerLevel.low: t.refuse_start,
        PowerLevel.disconnect: t.disconnect,
        PowerLevel.shutdown: t.shutdown,
    }.get(level)
    if limit is not None and p >= limit and level != PowerLevel.shutdown:
        held = f"{at}, back over {limit:g} % but held until {limit + t.hysteresis:g} %"
        return f"{held} (power.hysteresis_percent): {_WHAT[level]}"
    if level == PowerLevel.shutdown:
        return f"{at}, under {t.shutdown:g} % ({under} readings): shutting down cleanly"
    if level == PowerLevel.disconnect and p < t.shutdown:
        return (
            f"{at}, under {t.shutdown:g} %: shutting down if the next reading agrees; "
            f"{_WHAT[level]}"
        )
    if limit is not None:
        return f"{at}, under {limit:g} %: {_WHAT[level]}"
    return at


_WHAT = {
    PowerLevel.warn: "charge or swap it soon",
    PowerLevel.low: "new recordings are refused; charge it",
    PowerLevel.disconnect: "recording stopped and camera off; charge it",
}
