"""How the agent wires its power monitor: the runner and monitor it builds, what it does at
each level (finish the recording, stop the timelapse and the housekeeper), the battery
gate and the collector result; ``node_agent.wiring`` calls these.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from node_agent.commands import CommandRunner
from node_agent.power.monitor import PowerMonitor
from node_agent.power.policy import thresholds
from node_agent.power.provider import make_provider
from node_agent.power.schemas import PowerLevel
from node_agent.recorder.gates import battery_gate
from node_agent.recorder.service import Recorder
from node_agent.schemas import GateResult
from node_agent.settings import AgentSettings
from node_agent.storage.housekeeper import Housekeeper
from node_agent.telemetry.reading import Reading
from node_agent.timelapse.runner import Timelapse

log = logging.getLogger(__name__)


def power_reading(power: PowerMonitor) -> Reading[Any]:
    """The power collector's result (a failed provider is a failed collector)."""
    r = power.reading
    if r is None:
        none = power.provider.name == "none"
        return Reading("power", None, None if none else "no battery reading yet")
    return Reading("power", r, None if r.ok else r.error or "failed")


def build_power(settings: AgentSettings) -> tuple[CommandRunner, PowerMonitor]:
    """The command runner (dry-run from ``dashcam.dry_run``) and the power monitor."""
    runner = CommandRunner(dry_run=settings.dashcam.dry_run)
    monitor = PowerMonitor(
        settings.power,
        thresholds(settings.power, settings.gates.min_battery_percent),
        make_provider(settings.power, runner),
        runner,
        settings.recordings_path,
    )
    return runner, monitor


def wire_power(
    power: PowerMonitor, recorder: Recorder, timelapse: Timelapse, housekeeper: Housekeeper
) -> None:
    """What the agent does at each power level: under disconnect the recording is
    finished (file and manifest) and the timelapse stopped; at shutdown the same, then
    the housekeeper stops, so nothing holds a file when the disk is unmounted."""
    paused: list[bool] = []  # whether the timelapse ran when the battery stopped it

    async def stop_recording() -> None:
        t, d = power.thresholds, power.decision
        limit = t.shutdown if d.level == PowerLevel.shutdown or d.under_shutdown else t.disconnect
        reason = power.shutdown_reason or f"battery under {limit:g} %"
        manifest = await asyncio.to_thread(recorder.shutdown, 10.0, reason)
        if manifest is not None:
            log.warning("stopped %s: %s (sha256 %s)", manifest.file_name, reason, manifest.sha256)

    async def stop_timelapse() -> None:
        if timelapse.running:
            paused.append(True)
            await asyncio.to_thread(timelapse.stop)

    async def resume_timelapse() -> None:
        if paused:
            paused.clear()
            await asyncio.to_thread(timelapse.start)

    async def stop_housekeeper() -> None:
        await housekeeper.stop()

    power.on_disconnect(stop_recording)
    power.on_disconnect(stop_timelapse)
    power.on_reconnect(resume_timelapse)
    power.on_shutdown(stop_recording)
    power.on_shutdown(stop_timelapse)
    power.on_shutdown(stop_housekeeper)


def power_gate(power: PowerMonitor, min_percent: float) -> GateResult:
    """The battery gate from the monitor's latest decision."""
    return battery_gate(power.decision, min_percent, power.last_known)
