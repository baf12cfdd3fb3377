"""Pre-start gates: pure checks over readings, and the readers that take them.

Every gate answers ok / warning / refused with a reason a person can act on; the
recorder refuses a start (409) when any gate refuses, naming each one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from node_agent.power.policy import Decision
from node_agent.power.schemas import PowerLevel
from node_agent.recorder.keeper import StorageKeeper
from node_agent.schemas import ClockStatus, GateResult
from node_agent.settings import GateSettings, StorageSettings
from node_agent.telemetry.disk import free_bytes, minutes_left
from node_agent.telemetry.thermal import read_thermal


def storage_gate(
    writable_error: str | None,
    free_bytes: int,
    bitrate_bps: int,
    planned_s: float | None,
    min_free_minutes: float,
    reserve_s: float,
    critical: str | None = None,
) -> GateResult:
    """Writable, not at the critical level (``critical`` says why it is), and room for the
    planned duration (or ``min_free_minutes``) plus the reserve."""
    if writable_error is not None:
        return GateResult(gate="storage", ok=False, reason=f"not writable: {writable_error}")
    if critical is not None:
        return GateResult(gate="storage", ok=False, reason=critical)
    need_s = (planned_s if planned_s is not None else min_free_minutes * 60) + reserve_s
    have_min = minutes_left(free_bytes, bitrate_bps)
    if have_min * 60 < need_s:
        return GateResult(
            gate="storage",
            ok=False,
            reason=f"only {have_min:.1f} minutes fit at {bitrate_bps / 1e6:g} Mb/s; "
            f"{need_s / 60:.1f} needed (planned duration plus the {reserve_s:g} s reserve): "
            "offload and delete recordings, or plan a shorter recording",
        )
    return GateResult(gate="storage", ok=True, reason=f"{have_min:.0f} minutes free")


def temperature_gate(temp_c: float | None, max_c: float, source: str) -> GateResult:
    """CPU temperature under its limit; no sensor is a warning, not a refusal."""
    if temp_c is None:
        return GateResult(
            gate="temperature", ok=True, warning=True, reason=f"no temperature sensor ({source})"
        )
    if temp_c >= max_c:
        return GateResult(
            gate="temperature",
            ok=False,
            reason=f"CPU at {temp_c:.1f} °C, limit {max_c:g} °C: shade or cool the camera",
        )
    return GateResult(gate="temperature", ok=True, reason=f"CPU at {temp_c:.1f} °C")


# Levels at which a start is refused.
REFUSING = (PowerLevel.low, PowerLevel.disconnect, PowerLevel.shutdown)


def battery_gate(
    decision: Decision | None, min_percent: float, last_known: Decision | None = None
) -> GateResult:
    """The power monitor's decision as a gate: refused at low, disconnect and shutdown;
    a warning when the reading is unknown (failed or stale) or under power.warn_percent;
    ok on mains or AC. With no monitor (``None``) the node is taken to be on mains.

    An unknown reading right after a refusing one still refuses: a provider that stops
    answering on a nearly empty battery must not open the way to a start."""
    if decision is None or decision.level == PowerLevel.mains:
        return GateResult(
            gate="battery", ok=True, reason="no battery provider (none): mains power assumed"
        )
    need = f"a start needs {min_percent:g} % (gates.min_battery_percent)"
    if decision.level in REFUSING:
        return GateResult(gate="battery", ok=False, reason=f"{decision.reason}; {need}")
    if decision.level == PowerLevel.unknown:
        if last_known is not None and last_known.level in REFUSING:
            return GateResult(
                gate="battery",
                ok=False,
                reason=f"{decision.reason}; the last good reading said: {last_known.reason}; "
                f"{need}",
            )
        return GateResult(gate="battery", ok=True, warning=True, reason=decision.reason)
    return GateResult(
        gate="battery", ok=True, warning=decision.level == PowerLevel.warn, reason=decision.reason
    )


def _ms(ns: int | None, signed: bool = False) -> str:
    if ns is None:
        return "unknown"
    return f"{ns / 1e6:+.3f} ms" if signed else f"{ns / 1e6:.3f} ms"


def clock_numbers(clock: ClockStatus, limit_ms: float) -> str:
    """offset, bound, limit, reference (and the update's age): what a person checks."""
    parts = [
        f"offset {_ms(clock.offset_ns, signed=True)}",
        f"error bound {_ms(clock.error_bound_ns)}",
        f"limit {limit_ms:g} ms",
        f"reference {clock.reference or clock.selected_source or 'none'}",
    ]
    if clock.last_update_age_s is not None:
        parts.append(f"last update {clock.last_update_age_s:.1f} s ago")
    return ", ".join(parts)


def unsynchronized_why(clock: ClockStatus) -> str:
    """Why the clock is not synchronised, from the reading."""
    if clock.error:
        return clock.error
    if clock.sources and clock.selected_source is None:
        lost = ", ".join(f"{s.address} {s.state}" for s in clock.sources)
        return f"chrony has no selected source ({lost})"
    if clock.selected_source is not None:
        return f"the selected source {clock.selected_source} is unreachable"
    return "chrony reports no synchronised source"


def clock_gate(
    clock: ClockStatus, max_error_ms: float, policy: str = "refuse", corrected: bool = False
) -> GateResult:
    """Synchronised, and the error bound (|offset| + root dispersion + root delay / 2)
    within ``max_error_ms``. ``policy`` "warn" (or a node whose ``sync.role`` is none)
    lets the start go on with a warning; "refuse" refuses. The reason gives the numbers.

    ``corrected`` (``sync.correct_start_by_offset``): the start instant is shifted by the
    measured offset, so what can still be wrong is the offset's own error, root dispersion
    + root delay / 2. A clock chrony does not steer (``chronyd -x``) may be tens of ms off
    and still start on the fleet's instant; judging it by the full bound would refuse it."""
    soft = policy == "warn" or clock.role == "none"
    numbers = clock_numbers(clock, max_error_ms)
    if soft:
        setting = "sync.role none" if clock.role == "none" else "gates.clock_policy warn"
        then = f"starting anyway ({setting}): this camera may start out of step"
    else:
        then = "refused (gates.clock_policy refuse)"
    if not clock.synchronized or clock.offset_ns is None:
        reason = f"clock unsynchronized: {unsynchronized_why(clock)} ({numbers}); {then}"
        return GateResult(gate="clock", ok=soft, warning=soft, reason=reason)
    bound = clock.error_bound_ns if clock.error_bound_ns is not None else abs(clock.offset_ns)
    what = "clock error bound"
    if corrected:
        bound = (
            clock.offset_error_ns
            if clock.offset_error_ns is not None
            else max(0, bound - abs(clock.offset_ns))
        )
        what = "error bound of the corrected offset (root dispersion + root delay / 2)"
    if bound > max_error_ms * 1e6:
        reason = (
            f"{what} {bound / 1e6:.3f} ms exceeds {max_error_ms:g} ms "
            f"(gates.max_clock_error_ms; {numbers}); {then}: wait for chrony to settle "
            "or check the network to the master"
        )
        return GateResult(gate="clock", ok=soft, warning=soft, reason=reason)
    note = "; starts corrected by the offset" if corrected else ""
    return GateResult(gate="clock", ok=True, reason=f"clock synchronised ({numbers}{note})")


def check_writable(directory: Path) -> str | None:
    """Create, write and remove a probe file; None when that worked, else the error.

    No fsync: a read-only or missing disk, permissions and a full disk all show without
    one, and a start must not wait on the disk's cache (the self-test measures writes)."""
    probe = directory / f".write-probe-{os.getpid()}-{threading.get_ident()}"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, b"camfleet")
        finally:
            os.close(fd)
        probe.unlink()
    except OSError as err:
        return f"{directory}: {err.strerror or err}"
    return None


def start_need_bytes(bitrate_bps: int, planned_s: float | None, storage: StorageSettings) -> int:
    """The bytes a start needs free: the planned duration (or ``min_free_minutes``) plus the
    reserve, at ``bitrate_bps``."""
    need_s = (planned_s if planned_s is not None else storage.min_free_minutes * 60) + (
        storage.reserve_s
    )
    return int(need_s * bitrate_bps / 8)


def check_gates(
    directory: Path,
    bitrate_bps: int,
    planned_s: float | None,
    storage: StorageSettings,
    gates: GateSettings,
    clock: ClockStatus,
    keeper: StorageKeeper | None = None,
    battery: GateResult | None = None,
    corrected: bool = False,
) -> list[GateResult]:
    """Storage, temperature, battery and clock, read now (the camera is checked when it
    opens). With a ``keeper``, retention first frees what offloaded footage it may;
    ``battery`` is the power monitor's gate (None: no monitor, mains assumed);
    ``corrected``: starts are shifted by the measured clock offset (see ``clock_gate``)."""
    thermal = read_thermal(gates.thermal_path)
    writable = check_writable(directory)
    critical = None
    if writable is not None:
        free = 0
    elif keeper is not None:
        free, critical = keeper.room_for_start(start_need_bytes(bitrate_bps, planned_s, storage))
    else:
        free = free_bytes(directory)
    return [
        storage_gate(
            writable,
            free,
            bitrate_bps,
            planned_s,
            storage.min_free_minutes,
            storage.reserve_s,
            critical,
        ),
        temperature_gate(thermal.value, gates.max_cpu_temp_c, str(gates.thermal_path)),
        battery or battery_gate(None, gates.min_battery_percent),
        clock_gate(clock, gates.max_clock_error_ms, gates.clock_policy, corrected),
    ]
