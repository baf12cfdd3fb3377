"""The dashcam on the real power monitor: a battery command (a fake printing JSON from a
file the test rewrites), the policy's levels, and a fake systemctl for the shutdown.
Under disconnect the loop is woken and the camera goes off at once; at shutdown the loop
stops (camera in its safe state) before the machine is powered off."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from node_agent.commands import CommandRunner
from node_agent.dashcam.wiring import wire_dashcam_power
from node_agent.power.monitor import PowerMonitor
from node_agent.power.policy import thresholds
from node_agent.power.provider import make_provider
from node_agent.power.settings import PowerSettings
from tests.dashcam_standin import make_rig

ON = ["-l", "1-1", "-p", "1", "-a", "on"]
OFF = ["-l", "1-1", "-p", "1", "-a", "off"]


def test_disconnect_wakes_the_loop_and_shutdown_stops_it_before_poweroff(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, reachable=False)
    fb = rig.fakebin
    level = tmp_path / "battery.json"
    battery = fb.add("battery-info.sh", script=f'cat "{level}"')
    systemctl = fb.add("systemctl")
    fb.add("sync")
    settings = PowerSettings(
        provider="command",
        command=[str(battery)],
        shutdown_command=[str(systemctl), "poweroff"],
    )
    runner = CommandRunner(env=fb.env())  # `sync` at shutdown is the fake one
    monitor = PowerMonitor(
        settings, thresholds(settings, 55), make_provider(settings, runner), runner, None
    )
    dashcam = rig.dashcam
    dashcam.power = lambda: monitor.decision
    dashcam.settings.poll.interval_seconds = 3600  # only a wake-up runs a second cycle
    wire_dashcam_power(dashcam, monitor)

    def battery_at(percent: float) -> None:
        level.write_text(json.dumps({"battery_percent": percent, "on_ac": False}))

    async def until(check: object, what: str) -> None:
        deadline = time.monotonic() + 10
        while not check():  # type: ignore[operator]
            assert time.monotonic() < deadline, what
            await asyncio.sleep(0.02)

    async def scenario() -> None:
        battery_at(80)
        await monitor.poll_once()
        await dashcam.start()
        await until(lambda: dashcam.status().last_cycle_at_ns, "the first cycle")
        assert monitor.camera_powered is True
        battery_at(40)
        await monitor.poll_once()  # disconnect: the loop wakes, the camera goes off
        await until(lambda: monitor.camera_powered is False, "camera off after the disconnect")
        assert rig.uhubctl()[-1] == OFF
        battery_at(10)
        await monitor.poll_once()
        await monitor.poll_once()  # the second reading under 25 %: shutdown
        await until(lambda: fb.calls("systemctl"), "the poweroff")

    asyncio.run(scenario())
    order = [(c["argv"][0], c["argv"][1:]) for c in fb.calls() if c["argv"][0] != "battery-info.sh"]
    assert order[-4:] == [
        ("uhubctl", OFF),  # under disconnect_percent
        ("uhubctl", ON),  # the loop's stop: camera.safe_state recording
        ("sync", []),
        ("systemctl", ["poweroff"]),  # only then
    ]
    assert dashcam._task is not None and dashcam._task.done()
