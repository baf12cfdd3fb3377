"""The pure power policy and the battery gate: levels, hysteresis, AC, stale and failed
readings, the shutdown confirmation; table tests and a hypothesis property."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from node_agent.power.policy import START, Decision, Thresholds, decide, thresholds
from node_agent.power.schemas import PowerLevel, PowerReading
from node_agent.power.settings import PowerSettings
from node_agent.recorder.gates import battery_gate

T = Thresholds()  # 60 warn, 55 refuse, 50 disconnect, 25 shutdown, 3 hysteresis, 2 confirm
NOW = 1_800_000_000_000_000_000


def reading(percent: float | None, on_ac: bool | None = False, at: int = NOW) -> PowerReading:
    return PowerReading(provider="command", ok=True, percent=percent, on_ac=on_ac, read_at_ns=at)


def run(percents: list[float], t: Thresholds = T, prev: Decision = START) -> list[PowerLevel]:
    levels = []
    for p in percents:
        prev = decide(reading(p), NOW, prev, t, "command")
        levels.append(prev.level)
    return levels


def test_levels_from_the_top() -> None:
    assert run([80, 58, 53, 45]) == ["ok", "warn", "low", "disconnect"]


def test_leaving_a_level_needs_the_hysteresis_margin() -> None:
    # 49.9, 50.1, 49.8, 50.2 at a 50 % threshold: one change, not four
    assert run([70, 49.9, 50.1, 49.8, 50.2, 52.9, 53.0]) == [
        "ok",
        "disconnect",
        "disconnect",
        "disconnect",
        "disconnect",
        "disconnect",
        "low",  # 53 = 50 + 3: out of disconnect, into the level 53 % is in
    ]
    assert run([70, 45, 70]) == ["ok", "disconnect", "ok"]  # a real recovery is at once


def test_shutdown_needs_confirm_readings_in_a_row() -> None:
    three = Thresholds(confirm_readings=3)
    assert run([40, 20, 20, 30, 20, 20, 20], three) == [
        "disconnect",
        "disconnect",
        "disconnect",
        "disconnect",  # a reading over 25 % starts the count again
        "disconnect",
        "disconnect",
        "shutdown",
    ]
    assert run([20, 20]) == ["disconnect", "shutdown"]


def test_shutdown_stays() -> None:
    prev = Decision(PowerLevel.shutdown, "going down", 2)
    assert decide(reading(100, on_ac=True), NOW, prev, T, "command") is prev


@pytest.mark.parametrize("percent", [0.0, 10.0, 24.9, 49.0, 54.0, 99.0, None])
def test_ac_ignores_thresholds(percent: float | None) -> None:
    for prev in (START, Decision(PowerLevel.disconnect, "x"), Decision(PowerLevel.low, "y")):
        d = decide(reading(percent, on_ac=True), NOW, prev, T, "command")
        assert d.level == PowerLevel.ac and d.may_start and d.may_upload and d.camera_on
        assert "thresholds ignored" in d.reason


def test_stale_and_failed_readings_never_act() -> None:
    low = Decision(PowerLevel.disconnect, "under 50", under_shutdown=1)
    old = reading(5, at=NOW - int(121e9))
    stale = decide(old, NOW, low, T, "command")
    assert stale.level == PowerLevel.unknown and "121 s old" in stale.reason
    assert stale.camera_on is None  # no say: nothing is switched
    bad = PowerReading(provider="command", ok=False, error="exit 1", read_at_ns=NOW)
    failed = decide(bad, NOW, low, T, "command")
    assert failed.level == PowerLevel.unknown and "exit 1" in failed.reason
    assert decide(None, NOW, START, T, "command").level == PowerLevel.unknown
    assert decide(reading(None), NOW, START, T, "command").level == PowerLevel.unknown


def test_provider_none_is_mains() -> None:
    d = decide(None, NOW, START, T, "none")
    assert d.level == PowerLevel.mains and d.may_start and d.camera_on


def test_thresholds_come_from_the_settings() -> None:
    power = PowerSettings(
        warn_percent=70, disconnect_percent=40, shutdown_percent=15, hysteresis_percent=2
    )
    assert thresholds(power, 45) == Thresholds(
        warn=70, refuse_start=45, disconnect=40, shutdown=15, hysteresis=2
    )


@st.composite
def wobble(draw: st.DrawFn) -> tuple[Thresholds, list[float]]:
    """Thresholds spaced over twice the hysteresis, and readings within hysteresis/2 of one."""
    h = draw(st.floats(0.5, 5))
    gap = st.floats(2 * h + 0.1, 15)
    shutdown = draw(st.floats(5, 30))
    disconnect = shutdown + draw(gap)
    refuse = disconnect + draw(gap)
    warn = refuse + draw(gap)
    t = Thresholds(warn, refuse, disconnect, shutdown, h, draw(st.integers(1, 4)))
    at = draw(st.sampled_from([warn, refuse, disconnect, shutdown]))
    values = draw(st.lists(st.floats(at - h / 2, at + h / 2), min_size=2, max_size=40))
    return t, values


@given(wobble())
def test_a_wobbling_reading_changes_level_at_most_once(
    case: tuple[Thresholds, list[float]],
) -> None:
    t, values = case
    levels = run(values, t)
    changes = sum(1 for a, b in itertools.pairwise(levels) if a != b)
    assert changes <= 1, (t, values, levels)


def gate(level: PowerLevel, reason: str = "battery at 52.0 %, under 55 %") -> Decision:
    return Decision(level, reason)


def test_battery_gate() -> None:
    assert battery_gate(None, 55).ok and "mains power assumed" in battery_gate(None, 55).reason
    assert battery_gate(gate(PowerLevel.mains), 55).ok
    ac = battery_gate(gate(PowerLevel.ac, "on AC power (battery 10 %)"), 55)
    assert ac.ok and not ac.warning
    for level in (PowerLevel.low, PowerLevel.disconnect, PowerLevel.shutdown):
        refused = battery_gate(gate(level), 55)
        assert not refused.ok and "52.0 %" in refused.reason and "needs 55 %" in refused.reason
    warn = battery_gate(gate(PowerLevel.warn, "battery at 58.0 %"), 55)
    assert warn.ok and warn.warning
    unknown = battery_gate(gate(PowerLevel.unknown, "provider failed"), 55)
    assert unknown.ok and unknown.warning and "failed" in unknown.reason
    after_low = battery_gate(
        gate(PowerLevel.unknown, "provider failed"), 55, gate(PowerLevel.disconnect)
    )
    assert not after_low.ok and "last good reading" in after_low.reason
    assert battery_gate(gate(PowerLevel.ok, "battery at 80.0 %"), 55).ok
