"""The power monitor with an in-test battery and fake ``sync``, ``umount`` and ``systemctl``
executables that record their calls: what runs at each level, in what order, and what a
dry run, a failed reading, a busy disk or a failing callback change."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from node_agent.commands import CommandRunner
from node_agent.power.host import Host
from node_agent.power.metrics import power_metrics
from node_agent.power.monitor import PowerMonitor
from node_agent.power.none import NoProvider
from node_agent.power.policy import thresholds
from node_agent.power.provider import failed
from node_agent.power.schemas import PowerLevel, PowerReading
from node_agent.power.settings import PowerSettings
from tests.fakebin import FakeBin

NOW = 1_800_000_000_000_000_000


class Clock:
    def __init__(self) -> None:
        self.ns = NOW

    def __call__(self) -> int:
        return self.ns


class Battery:
    """An in-test provider: says what the test sets."""

    name = "command"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.percent = 80.0
        self.on_ac = False
        self.error: str | None = None
        self.raises = False
        self.calls = 0
        self.third = threading.Event()

    def read(self) -> PowerReading:
        self.calls += 1
        if self.calls >= 3:
            self.third.set()
        if self.raises:
            raise OSError("i2c bus gone")
        if self.error:
            return failed(self.name, self.error)
        return PowerReading(
            provider=self.name,
            ok=True,
            percent=self.percent,
            on_ac=self.on_ac,
            read_at_ns=self.clock(),
        )


@dataclass
class Rig:
    monitor: PowerMonitor
    battery: Battery
    clock: Clock
    fake: FakeBin
    disk: Path
    systemctl: Path

    def step(
        self, name: str, fail: BaseException | None = None, hang: bool = False
    ) -> Callable[[], Awaitable[None]]:
        """A callback that writes itself into the fakes' log, so one log holds the order."""

        async def cb() -> None:
            await asyncio.to_thread(self.note, name)
            if hang:
                await asyncio.sleep(30)
            if fail is not None:
                raise fail

        cb.__name__ = name
        return cb

    async def feed(self, *percents: float) -> list[PowerLevel]:
        levels = []
        for p in percents:
            self.battery.percent = p
            levels.append((await self.monitor.poll_once()).level)
        return levels

    def note(self, name: str) -> None:
        with open(self.fake.log, "a") as fh:
            fh.write(json.dumps({"argv": [f"step:{name}"], "t": time.time()}) + "\n")

    def calls(self) -> list[list[str]]:
        return self.fake.argvs()


def rig(
    tmp_path: Path,
    *,
    dry_run: bool = False,
    confirm: int = 2,
    umount: str = "exit 0",
    on_root: bool = False,
) -> Rig:
    fake = FakeBin(tmp_path)
    fake.add("sync")
    fake.add("umount", script=umount)
    systemctl = fake.add("systemctl")
    runner = CommandRunner(dry_run=dry_run, env={"PATH": f"{fake.dir}:/usr/bin:/bin"})
    settings = PowerSettings(
        provider="command",
        command=["battery-info.sh"],
        shutdown_command=[str(systemctl), "poweroff"],
        confirm_readings=confirm,
    )
    disk = tmp_path / "disk"
    (disk / "recordings").mkdir(parents=True)
    mountinfo = tmp_path / "mountinfo"
    lines = ["22 1 259:2 / / rw,noatime shared:1 - ext4 /dev/root rw"]
    if not on_root:
        lines.append(f"98 22 8:1 / {disk} rw,relatime shared:40 - ext4 /dev/sda1 rw")
    mountinfo.write_text("\n".join(lines) + "\n")
    clock = Clock()
    battery = Battery(clock)
    monitor = PowerMonitor(
        settings, thresholds(settings, 55), battery, runner, disk / "recordings", now_ns=clock
    )
    monitor.host = Host(runner, settings.shutdown_command, mountinfo=mountinfo, retry_wait_s=0)
    return Rig(monitor, battery, clock, fake, disk, systemctl)


def wire(r: Rig) -> None:
    r.monitor.on_disconnect(r.step("stop_recording"))
    r.monitor.on_disconnect(r.step("camera_off"))
    r.monitor.on_reconnect(r.step("camera_on"))
    r.monitor.on_shutdown(r.step("finish_files"))
    r.monitor.on_shutdown(r.step("stop_housekeeper"))


def test_disconnect_runs_its_callbacks_once_and_reconnects_only_past_the_hysteresis(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    wire(r)

    async def scenario() -> None:
        assert await r.feed(80) == ["ok"]
        assert r.calls() == []
        assert await r.feed(48, 47, 49.5, 52.9) == ["disconnect"] * 4
        assert r.calls() == [["step:stop_recording"], ["step:camera_off"]]
        assert r.monitor.decision.camera_on is False
        assert await r.feed(53.5) == ["low"]
        assert r.calls()[2:] == [["step:camera_on"]]
        assert r.monitor.decision.camera_on is True and not r.monitor.decision.may_start
        assert await r.feed(70, 45) == ["ok", "disconnect"]  # a second drop acts again
        assert [c[0] for c in r.calls()].count("step:stop_recording") == 2

    asyncio.run(scenario())
    actions = r.monitor.status().actions
    assert any("ok -> disconnect: battery at 48.0 %" in a for a in actions)
    assert actions[0].startswith("2027-01-15T08:00:00+00:00")  # NOW, in UTC
    assert not any(c[0] in ("sync", "umount", "systemctl") for c in r.calls())


def test_shutdown_runs_the_callbacks_then_syncs_unmounts_and_powers_off_in_that_order(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    wire(r)

    async def scenario() -> None:
        assert await r.feed(80, 20) == ["ok", "disconnect"]  # one reading is not enough
        assert await r.feed(20) == ["shutdown"]
        assert await r.feed(90) == ["shutdown"]  # never called off

    asyncio.run(scenario())
    assert r.calls() == [
        ["step:stop_recording"],
        ["step:camera_off"],
        ["step:finish_files"],
        ["step:stop_housekeeper"],
        ["sync"],
        ["umount", str(r.disk)],
        ["systemctl", "poweroff"],
    ]
    assert r.battery.calls == 3  # nothing is read once the machine is going down
    status = r.monitor.status()
    assert status.shutting_down and status.level == PowerLevel.shutdown
    assert any(a.endswith(f"umount {r.disk}: ok") for a in status.actions)
    assert status.actions[-1].endswith("poweroff: ok")


def test_a_failing_or_hanging_callback_never_stops_the_shutdown(tmp_path: Path) -> None:
    r = rig(tmp_path, confirm=1)
    r.monitor.callback_timeout_s = 0.2
    r.monitor.on_disconnect(r.step("stop_recording", fail=RuntimeError("encoder stuck")))
    r.monitor.on_shutdown(r.step("finish_files", hang=True))
    r.monitor.on_shutdown(r.step("stop_housekeeper"))
    assert asyncio.run(r.feed(80, 10)) == ["ok", "shutdown"]
    assert [c[0] for c in r.calls()] == [
        "step:stop_recording",  # straight to shutdown: the disconnect steps run first
        "step:finish_files",
        "step:stop_housekeeper",
        "sync",
        "umount",
        "systemctl",
    ]
    actions = r.monitor.status().actions
    assert any("stop_recording failed: RuntimeError: encoder stuck" in a for a in actions)
    assert any("finish_files failed: TimeoutError: still running after 0.2 s" in a for a in actions)


def test_a_busy_disk_is_retried_once_then_the_machine_is_powered_off_anyway(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path, confirm=1, umount="echo 'umount: target is busy.' >&2; exit 32")
    asyncio.run(r.feed(10))
    assert [c[0] for c in r.calls()] == ["sync", "umount", "umount", "systemctl"]
    assert any("exit 32: umount: target is busy." in a for a in r.monitor.status().actions)


def test_a_disk_busy_once_is_unmounted_on_the_retry(tmp_path: Path) -> None:
    flag = tmp_path / "busy-once"
    body = f"if [ ! -e {flag} ]; then touch {flag}; echo busy >&2; exit 32; fi; exit 0"
    r = rig(tmp_path, confirm=1, umount=body)
    asyncio.run(r.feed(10))
    assert [c[0] for c in r.calls()] == ["sync", "umount", "umount", "systemctl"]
    assert any(a.endswith(f"umount {r.disk}: ok") for a in r.monitor.status().actions)


def test_recordings_on_the_root_file_system_are_never_unmounted(tmp_path: Path) -> None:
    r = rig(tmp_path, confirm=1, on_root=True)
    asyncio.run(r.feed(10))
    assert [c[0] for c in r.calls()] == ["sync", "systemctl"]
    assert any("not unmounted" in a and "system mount" in a for a in r.monitor.status().actions)


def test_dry_run_calls_nothing_and_the_actions_say_would(tmp_path: Path) -> None:
    r = rig(tmp_path, dry_run=True)
    wire(r)
    assert asyncio.run(r.feed(80, 48, 20, 20)) == ["ok", "disconnect", "disconnect", "shutdown"]
    assert r.calls() == []  # no callback, no program
    text = "\n".join(r.monitor.status().actions)
    for would in (
        "would run disconnect step stop_recording",
        "would run shutdown step finish_files",
        "would run sync",
        f"would run umount {r.disk}",
        f"would run {r.systemctl} poweroff",
    ):
        assert would in text
    assert r.monitor.status().reason.startswith("dry run (nothing is done)")


def test_failed_and_stale_readings_act_on_nothing(tmp_path: Path) -> None:
    r = rig(tmp_path)
    wire(r)

    async def scenario() -> None:
        assert await r.feed(48) == ["disconnect"]
        r.battery.error = "exit 1: i2c read failed"
        for _ in range(5):
            assert (await r.monitor.poll_once()).level == PowerLevel.unknown
        r.battery.error = None
        r.battery.raises = True
        assert (await r.monitor.poll_once()).level == PowerLevel.unknown
        r.battery.raises = False
        # The hysteresis is judged against the last good reading, not the failure:
        assert await r.feed(51) == ["disconnect"]

    asyncio.run(scenario())
    assert r.calls() == [["step:stop_recording"], ["step:camera_off"]]
    status = r.monitor.status()
    assert status.reading is not None and status.reading.ok
    r.clock.ns += int(200e9)  # nothing polled for 200 s
    assert r.monitor.decision.level == PowerLevel.unknown
    assert "200 s old" in r.monitor.status().reason
    assert r.monitor.last_known.level == PowerLevel.disconnect


def test_a_failing_provider_never_shuts_down(tmp_path: Path) -> None:
    r = rig(tmp_path, confirm=1)
    r.battery.error = "timed out after 5.0 s"
    levels = [asyncio.run(r.monitor.poll_once()).level for _ in range(4)]
    assert levels == [PowerLevel.unknown] * 4 and r.calls() == []
    assert "timed out" in r.monitor.status().reason


def test_ac_ignores_thresholds_and_brings_the_camera_back(tmp_path: Path) -> None:
    r = rig(tmp_path, confirm=1)
    wire(r)

    async def scenario() -> None:
        assert await r.feed(48) == ["disconnect"]
        r.battery.on_ac = True
        assert await r.feed(10, 5, 1) == ["ac"] * 3

    asyncio.run(scenario())
    assert r.calls() == [["step:stop_recording"], ["step:camera_off"], ["step:camera_on"]]
    assert r.monitor.decision.may_upload


def test_the_loop_polls_until_stopped(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.monitor.settings = r.monitor.settings.model_copy(update={"poll_interval_s": 0.01})

    async def scenario() -> int:
        r.monitor.start()
        assert await asyncio.to_thread(r.battery.third.wait, 10)
        await r.monitor.stop()
        return r.battery.calls

    stopped_at = asyncio.run(scenario())
    assert r.battery.calls == stopped_at


def test_status_and_metrics_show_the_reading(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.battery.percent = 52.0
    asyncio.run(r.monitor.poll_once())
    r.monitor.camera_powered = True
    status = r.monitor.status()
    assert status.level == PowerLevel.low and status.camera_powered is True
    assert status.age_s == 0 and status.provider == "command"
    samples = {
        (m.name, s.labels.get("level")): s.value
        for m in power_metrics(status, ["node"], ["n1"])
        for s in m.samples
    }
    assert samples[("camfleet_power_battery_percent", None)] == 52.0
    assert samples[("camfleet_power_on_ac", None)] == 0
    assert samples[("camfleet_power_level", "low")] == 1
    assert samples[("camfleet_power_level", "ok")] == 0
    assert ("camfleet_power_battery_voltage_volts", None) not in samples  # not given: left out


def test_provider_none_is_mains_from_the_start() -> None:
    settings = PowerSettings()
    monitor = PowerMonitor(settings, thresholds(settings, 55), NoProvider(), CommandRunner(), None)
    assert monitor.decision.level == PowerLevel.mains and monitor.decision.may_start
    assert monitor.status().reason == "no battery provider: mains power assumed"


def test_a_shutdown_asked_for_runs_the_same_steps_it_planned_at_any_battery_level(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    wire(r)
    planned = r.monitor.planned_steps()
    assert planned == [
        "disconnect step stop_recording",
        "disconnect step camera_off",
        "shutdown step finish_files",
        "shutdown step stop_housekeeper",
        "sync",
        f"unmount the disk holding {r.disk / 'recordings'} (if it has its own)",
        f"{r.systemctl} poweroff",
    ]

    async def scenario() -> None:
        assert await r.feed(80) == ["ok"]
        assert await r.monitor.shut_down_now("asked through the API") is True
        assert await r.monitor.shut_down_now("again") is False  # it has begun: once only

    asyncio.run(scenario())
    assert r.calls() == [
        ["step:stop_recording"],
        ["step:camera_off"],
        ["step:finish_files"],
        ["step:stop_housekeeper"],
        ["sync"],
        ["umount", str(r.disk)],
        ["systemctl", "poweroff"],
    ]
    assert r.monitor.shutdown_reason == "asked through the API"
    status = r.monitor.status()
    assert status.shutting_down
    assert any(a.endswith("shutdown asked: asked through the API") for a in status.actions)


def test_a_dry_run_shutdown_asked_for_plans_and_runs_nothing(tmp_path: Path) -> None:
    r = rig(tmp_path, dry_run=True)
    wire(r)
    assert all(s.startswith("would run ") for s in r.monitor.planned_steps())
    assert asyncio.run(r.monitor.shut_down_now("asked through the API")) is True
    assert r.calls() == []
    assert any("would run" in a and "poweroff" in a for a in r.monitor.status().actions)
