"""The events that become notifications, each through the real part that has it, to a
real local receiver: the timelapse camera failing 3 times in a row, a render that
fails, the disk's levels from the housekeeper, the battery's levels from the power
monitor (a real battery command), the recorder's stops and failures, the dashcam's
backup; the coordinator's node offline, clock bound and battery from its caches, and
offload failures. End to end: a real agent whose camera is missing, and a real
coordinator that sees its node die; the config API masks the notification secrets."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from app.demo import stop_all
from app.fleet.client import NodeAddress
from app.fleet.state import FleetState
from app.notify.service import FleetAlerts
from common.notify import Notifier, WebhookChannel
from node_agent.camera.lock import CameraLock
from node_agent.camera.protocol import CameraBackend, CameraError
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.commands import CommandRunner
from node_agent.naming import still_path, video_name
from node_agent.notify.alerts import AgentAlerts
from node_agent.power.command import CommandProvider
from node_agent.power.monitor import PowerMonitor
from node_agent.power.policy import thresholds
from node_agent.power.settings import PowerSettings
from node_agent.recorder.counters import RecordingCounters
from node_agent.recorder.policies import reserve_reached
from node_agent.schemas import (
    ClockStatus,
    Codec,
    DiskLevel,
    DiskStatus,
    NodeStatus,
    Position,
    RecorderState,
    RecorderStatus,
)
from node_agent.settings import StorageSettings
from node_agent.storage.housekeeper import Housekeeper
from node_agent.timelapse.errors import TimelapseFailure
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.settings import TimelapseSettings
from tests.conftest import RunningFleet
from tests.fakebin import FakeBin
from tests.notify_receiver import Receiver
from tests.solo_agent import solo_agent


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def notifier_for(
    receiver: Receiver, device: str = "cam-c", repeat_window_s: float = 3600.0
) -> Notifier:
    return Notifier(
        [WebhookChannel(f"{receiver.url}/hook")], device, repeat_window_s=repeat_window_s
    )


def messages(receiver: Receiver) -> list[tuple[str, str]]:
    return [(b["level"], b["message"]) for b in receiver.bodies("/hook")]


# -- the agent's parts ----------------------------------------------------------------------


class GoneCamera(SyntheticCamera):
    """A camera that is not there: every open fails."""

    def open(self) -> None:
        raise CameraError("no camera on the bus")


def gone_factory(
    source: str,
    width: int,
    height: int,
    fps: float,
    camera_id: str = "",
    *,
    device: str | None = None,
) -> CameraBackend:
    return GoneCamera(width, height, fps, camera_id)


def timelapse(tmp_path: Path, alerts: AgentAlerts, **settings: object) -> Timelapse:
    return Timelapse(
        TimelapseSettings.model_validate({"interval_s": 0.1} | settings),
        source="synthetic",
        camera_width=160,
        camera_height=120,
        camera_fps=30.0,
        cam_id="CAM_C",
        data_dir=tmp_path,
        lock=CameraLock(tmp_path / "camera.lock"),
        rng=random.Random(1),
        observer=alerts.timelapse_event,
        backend_factory=gone_factory,
    )


def test_three_camera_failures_in_a_row_are_one_error(tmp_path: Path, receiver: Receiver) -> None:
    notifier = notifier_for(receiver)
    tl = timelapse(tmp_path, AgentAlerts(notifier), backoff_base_s=0.02, backoff_max_s=0.05)
    tl.start()
    try:
        deadline = time.monotonic() + 20
        while tl.status().consecutive_failures < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tl.stop()
    assert notifier.flush(10)
    # Failures 1 and 2 say nothing; the 3rd is told; the 4th, 5th... are inside the window.
    assert messages(receiver) == [
        (
            "ERROR",
            "timelapse camera failed 3 times in a row: cannot open the camera: "
            "no camera on the bus",
        )
    ]
    assert notifier.stats.suppressed >= 3


def test_a_hanging_receiver_does_not_slow_the_capture_loop(tmp_path: Path) -> None:
    hanging = Receiver()
    hanging.mode = "hang"
    notifier = Notifier(
        [WebhookChannel(f"{hanging.url}/hook")], "cam-c", repeat_window_s=0, timeout_s=5
    )
    tl = timelapse(tmp_path, AgentAlerts(notifier), backoff_base_s=0.02, backoff_max_s=0.05)
    try:
        t0 = time.monotonic()
        tl.start()
        while tl.status().consecutive_failures < 12 and time.monotonic() - t0 < 20:
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        tl.stop()
        # Ten alerts were queued from the capture thread while the worker was stuck on
        # the first send for its 5 s time-out: the loop kept its backoff pace (~0.05 s).
        assert tl.status().consecutive_failures >= 12
        assert elapsed < 4, elapsed
        assert notifier.stats.queued >= 10 and notifier.stats.sent == 0
    finally:
        hanging.close()
        notifier.close(0.1)


def test_a_render_that_fails_is_video_creation_failed(tmp_path: Path, receiver: Receiver) -> None:
    notifier = notifier_for(receiver)
    tl = timelapse(tmp_path, AgentAlerts(notifier))
    day = dt.date(2026, 2, 8)
    still = tl.folder / still_path(dt.datetime(2026, 2, 8, 12, 0, 0))
    still.parent.mkdir(parents=True)
    Image.new("RGB", (64, 48), (200, 100, 50)).save(still)
    # The video's place is taken by a folder: the rename at the end fails.
    (tl.folder / video_name("CAM_C", day) / "in-the-way").mkdir(parents=True)
    with pytest.raises(TimelapseFailure):
        tl.render(day, 10.0)
    assert notifier.flush(10)
    ((level, text),) = messages(receiver)
    assert level == "ERROR"
    assert text.startswith("timelapse video not created: 2026-02-08: cannot write videos/")


def test_the_housekeeper_s_disk_levels_are_a_warning_and_an_error(
    tmp_path: Path, receiver: Receiver
) -> None:
    notifier = notifier_for(receiver, repeat_window_s=0)
    # The spec's used-percent levels out of the way: only the housekeeper's count here.
    alerts = AgentAlerts(notifier, disk_warning_used=100.0, disk_critical_used=100.0)
    # Thresholds set so this machine's disk (not 100 % free) is at the level wanted.
    warn = StorageSettings(
        warn_free_percent=99.999, critical_free_percent=0.001, retention_free_percent=99.999
    )
    critical = StorageSettings(
        warn_free_percent=99.9995, critical_free_percent=99.999, retention_free_percent=99.9995
    )
    ok = StorageSettings(warn_free_percent=0.002, critical_free_percent=0.001)
    for settings in (ok, warn, critical):
        keeper = Housekeeper(tmp_path, settings, "cam-c")
        keeper.on_level = alerts.disk_level
        keeper.tick()
    assert notifier.flush(10)
    got = messages(receiver)
    assert [level for level, _ in got] == ["WARNING", "ERROR"]
    assert "% used (" in got[0][1] and got[0][1].endswith("offload soon")
    assert got[1][1].endswith("starts are refused, offload now")


def test_the_spec_s_disk_levels_are_over_80_and_over_90_percent_used(
    receiver: Receiver,
) -> None:
    notifier = notifier_for(receiver, repeat_window_s=0)
    alerts = AgentAlerts(notifier)
    ok = DiskLevel.ok
    for free in (25.0, 20.0, 19.0, 10.0, 9.0):  # used: 75, 80, 81, 90, 91
        alerts.disk_level(ok, free, 2_000_000_000)
    alerts.disk_level(DiskLevel.critical, 12.0, 2_000_000_000)  # the housekeeper's: stricter
    assert notifier.flush(10)
    got = messages(receiver)
    assert [level for level, _ in got] == ["WARNING", "WARNING", "ERROR", "ERROR"]
    assert got[0][1] == "disk 81 % used (2.00 GB free): offload soon"
    assert got[2][1] == "disk 91 % used (2.00 GB free): offload now"
    assert got[3][1].endswith("starts are refused, offload now")


def test_the_battery_s_levels_through_a_real_battery_command(
    tmp_path: Path, receiver: Receiver
) -> None:
    notifier = notifier_for(receiver)
    reading = tmp_path / "battery.json"
    fake = FakeBin(tmp_path)
    script = fake.add("battery-info.sh", script=f"cat {reading}")
    settings = PowerSettings(provider="command", command=[str(script)], confirm_readings=1)
    runner = CommandRunner(dry_run=True)  # nothing is shut down; readings still taken
    monitor = PowerMonitor(
        settings,
        thresholds(settings, 55.0),
        CommandProvider([str(script)], CommandRunner(), 5.0),
        runner,
        None,
    )
    monitor.on_level = AgentAlerts(notifier).power_level

    async def feed() -> None:
        # Down to the warning, back up, the warning again (held back by the window), then
        # down through every level.
        for percent in (80, 58, 70, 58, 52, 45, 20):
            reading.write_text(json.dumps({"battery_percent": percent}))
            await monitor.poll_once()

    asyncio.run(feed())
    assert notifier.flush(10)
    got = messages(receiver)
    assert [level for level, _ in got] == ["WARNING", "WARNING", "ERROR", "CRITICAL"]
    assert got[0][1].startswith("battery low, plan a charge")
    assert got[2][1].startswith("battery very low: recording stopped and the camera powered down")
    assert got[3][1].startswith("battery empty: shutting down")


def test_recorder_stops_for_disk_and_battery_and_three_failures(receiver: Receiver) -> None:
    notifier = notifier_for(receiver)
    alerts = AgentAlerts(notifier)
    disk_stop = reserve_reached(1_000_000, 120, 30_000_000)
    assert disk_stop is not None
    alerts.recording_finished(RecordingCounters(frames=10, stop_reason=disk_stop))
    alerts.recording_finished(RecordingCounters(frames=10, stop_reason="battery under 50 %"))
    alerts.recording_finished(RecordingCounters(frames=10, stop_reason="stopped"))
    alerts.arming_failed("camera: no camera on the bus")
    alerts.recording_finished(RecordingCounters(error="camera: frame time-out"))
    alerts.arming_failed("camera: no camera on the bus")
    assert notifier.flush(10)
    assert messages(receiver) == [
        (
            "ERROR",
            "recording stopped: disk reserve reached: 1.0 MB free, less than 120 s at 30 Mb/s",
        ),
        ("ERROR", "recording stopped: battery under 50 %"),
        ("ERROR", "recorder camera failed 3 times in a row: camera: no camera on the bus"),
    ]


def test_a_dashcam_backup_that_fails_is_an_error(receiver: Receiver) -> None:
    notifier = notifier_for(receiver)
    AgentAlerts(notifier).dashcam_problem("upload", "2 of 3 file(s) not confirmed: rsync exit 12")
    assert notifier.flush(10)
    assert messages(receiver) == [
        ("ERROR", "dashcam backup to the NAS failed: 2 of 3 file(s) not confirmed: rsync exit 12")
    ]


# -- the coordinator's events ------------------------------------------------------------


def node_status(fps: float, bound_ms: float, power_level: str | None = None) -> NodeStatus:
    power = None
    if power_level is not None:
        power = {"provider": "command", "level": power_level, "reason": "battery 40 %"}
    return NodeStatus.model_validate(
        {
            "node_id": "cam-l",
            "cam_id": "CAM_L",
            "position": Position.left,
            "hostname": "h",
            "version": "9",
            "time_ns": time.time_ns(),
            "uptime_s": 1.0,
            "recorder": RecorderStatus(
                state=RecorderState.idle,
                codec=Codec.h264,
                width=320,
                height=240,
                fps=fps,
                bitrate_bps=1_000_000,
                profile="p",
                camera="synthetic",
            ),
            "clock": ClockStatus(
                source="chrony", synchronized=True, error_bound_ns=int(bound_ms * 1e6)
            ),
            "disk": DiskStatus(path="/", total_bytes=1, free_bytes=1, minutes_left=1.0),
            "coordinator": "joined",
            "power": power,
        }
    )


def fleet_with_one_node() -> FleetState:
    state = FleetState(offline_after_s=3)
    state.set_address(NodeAddress("cam-l", "127.0.0.1", 9, "t"), "CAM_L")
    return state


def test_a_node_going_offline_is_told_once_and_coming_back_is_info(receiver: Receiver) -> None:
    notifier = notifier_for(receiver, device="coordinator")
    state = fleet_with_one_node()
    alerts = FleetAlerts(notifier, state)
    alerts.sweep()  # never seen online: nothing to say
    state.contact("cam-l", 3.0)
    alerts.sweep()
    state.mark_offline("cam-l", "status stream ended; probe: connection refused")
    alerts.sweep()
    alerts.sweep()
    state.contact("cam-l", 3.0)
    alerts.sweep()
    # Offline again within the hour: held back. Offline by silence, long after: told.
    state.mark_offline("cam-l", "gone again")
    alerts.sweep()
    state.contact("cam-l", 3.0)
    alerts.sweep()
    alerts.sweep(time.time_ns() + 10 * 10**9)
    assert notifier.flush(10)
    assert messages(receiver) == [
        (
            "ERROR",
            "node cam-l (CAM_L) is offline: status stream ended; probe: connection refused",
        )
    ]
    assert receiver.bodies("/hook")[0]["device_id"] == "coordinator"


def test_a_clock_bound_over_a_frame_period_and_a_node_s_battery(receiver: Receiver) -> None:
    notifier = notifier_for(receiver, device="coordinator")
    state = fleet_with_one_node()
    alerts = FleetAlerts(notifier, state)
    state.contact("cam-l", 3.0)
    state.set_status("cam-l", node_status(fps=30, bound_ms=5))
    alerts.sweep()  # 5 ms is within 33.3 ms: nothing
    state.set_status("cam-l", node_status(fps=60, bound_ms=40, power_level="warn"))
    alerts.sweep()
    state.set_status("cam-l", node_status(fps=60, bound_ms=40, power_level="disconnect"))
    alerts.sweep()
    assert notifier.flush(10)
    assert messages(receiver) == [
        ("WARNING", "node cam-l (CAM_L): clock bound 40.0 ms exceeds one frame period 16.7 ms"),
        ("WARNING", "node cam-l (CAM_L): battery low"),
        ("ERROR", "node cam-l (CAM_L): battery very low: recording stopped, camera off"),
    ]


def test_offload_failures_are_one_alert_per_node_and_corrupt_copies_each(
    receiver: Receiver,
) -> None:
    notifier = notifier_for(receiver, device="coordinator")
    alerts = FleetAlerts(notifier, fleet_with_one_node())
    alerts.offload_failed(
        "job1",
        [("cam-l", "a.mp4", "node gone"), ("cam-l", "b.mp4", "node gone"), ("cam-x", "c.mp4", "e")],
    )
    alerts.offload_corrupt("cam-l", "a.mp4", "SHA-256 mismatch")
    assert notifier.flush(10)
    assert messages(receiver) == [
        ("ERROR", "offload job1: 2 file(s) from cam-l (CAM_L) failed (a.mp4: node gone)"),
        ("ERROR", "offload job1: 1 file(s) from cam-x failed (c.mp4: e)"),
        ("ERROR", "offload of a.mp4 from cam-l (CAM_L) is corrupt: SHA-256 mismatch"),
    ]


# -- end to end ---------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_agent_whose_camera_is_missing_tells_the_webhook_once(
    tmp_path: Path, receiver: Receiver
) -> None:
    secret_hook = f"{receiver.url}/hook/very-secret-id"
    with solo_agent(
        tmp_path,
        CAMFLEET_CAMERA__SOURCE="v4l2",
        CAMFLEET_CAMERA__DEVICE="/nonexistent/camfleet-tests/video9",
        CAMFLEET_TIMELAPSE__INTERVAL_S="0.2",
        CAMFLEET_TIMELAPSE__BACKOFF_BASE_S="0.05",
        CAMFLEET_TIMELAPSE__BACKOFF_MAX_S="0.1",
        CAMFLEET_NOTIFICATIONS__WEBHOOK_URL=secret_hook,
        CAMFLEET_NOTIFICATIONS__TELEGRAM_BOT_TOKEN="987:telegram-secret",
        CAMFLEET_NOTIFICATIONS__TELEGRAM_CHAT_ID="7",
        CAMFLEET_NOTIFICATIONS__TELEGRAM_API_BASE=f"{receiver.url}/tg",
    ) as agent:
        config = agent.client.get("/api/v1/config")
        assert config.status_code == 200, config.text
        shown = config.json()["settings"]["notifications"]
        assert shown["webhook_url"] == shown["telegram_bot_token"] == "**********"
        assert "very-secret" not in config.text and "telegram-secret" not in config.text

        started = agent.client.post("/api/v1/timelapse/start")
        assert started.status_code == 200, started.text
        got = receiver.wait_for(2, timeout_s=30)
        deadline = time.monotonic() + 30
        while agent.client.get("/api/v1/timelapse").json()["consecutive_failures"] < 6:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
    hook = receiver.bodies("/hook/very-secret-id")
    assert len(hook) == 1, receiver.received
    assert hook[0]["device_id"] == "cam-c" and hook[0]["level"] == "ERROR"
    assert hook[0]["message"].startswith("timelapse camera failed 3 times in a row: ")
    (tg,) = receiver.bodies("/tg/bot987:telegram-secret/sendMessage")
    assert tg["chat_id"] == "7" and tg["text"].startswith("ERROR cam-c: timelapse camera failed")
    assert {r.path for r in got} == {
        "/hook/very-secret-id",
        "/tg/bot987:telegram-secret/sendMessage",
    }
    log = agent.log.read_text()
    assert "very-secret" not in log and "telegram-secret" not in log


@pytest.mark.slow
def test_a_real_coordinator_tells_the_webhook_when_its_node_dies(
    tmp_path: Path, receiver: Receiver
) -> None:
    running = RunningFleet(
        root=tmp_path,
        coordinator_env={
            "CAMFLEET_NOTIFICATIONS__WEBHOOK_URL": f"{receiver.url}/hook",
            "CAMFLEET_NOTIFICATIONS__DISCORD_WEBHOOK_URL": f"{receiver.url}/discord",
        },
    )
    try:
        running.start_coordinator()
        running.start_agent("CAM_L", "left")
        running.wait_online(1)
        time.sleep(2.5)  # one sweep sees it online
        running.kill(running.agents["CAM_L"], signal.SIGKILL)
        got = receiver.wait_for(2, timeout_s=30)
    finally:
        stop_all(running.children(), timeout_s=20)
    hook = receiver.bodies("/hook")
    assert len(hook) == 1, got
    assert hook[0]["device_id"] == "coordinator" and hook[0]["level"] == "ERROR"
    assert hook[0]["message"].startswith("node cam-l (CAM_L) is offline: ")
    (discord,) = receiver.bodies("/discord")
    assert discord["content"].startswith("ERROR coordinator: node cam-l (CAM_L) is offline")


# -- the daily summaries ---------------------------------------------------------------------


def test_the_agent_s_daily_summary_from_its_real_status(tmp_path: Path, receiver: Receiver) -> None:
    from node_agent.settings import AgentSettings
    from node_agent.wiring import build_context

    settings = AgentSettings.model_validate(
        {
            "node_id": "cam-c",
            "data_dir": str(tmp_path),
            "chronyc_path": "/nonexistent/camfleet-tests/chronyc",
            "camera": {"source": "synthetic", "width": 320, "height": 240, "fps": 30},
            "notifications": {"webhook_url": f"{receiver.url}/hook", "daily_summary": True},
        }
    )
    ctx = build_context(settings)
    assert ctx.notifications is not None
    n = ctx.notifications
    n.alerts.disk_level(DiskLevel.warn, 12.0, 3_000_000_000)
    n.send_summary(dt.date.today(), ctx.status)
    assert n.notifier.flush(10)
    hook = receiver.bodies("/hook")
    assert [b["level"] for b in hook] == ["WARNING", "INFO"]
    text = hook[1]["message"]
    lines = text.splitlines()
    assert lines[0] == f"cam-c Daily Summary - {dt.date.today().isoformat()}"
    assert "Photos: 0 captured" in lines and "Video: none" in lines
    assert any(line.startswith("Disk: ") and "GB free)" in line for line in lines)
    assert "Backup: Nothing to back up" in lines
    assert lines[-2:] == [
        "Errors today (1):",
        "- WARNING: disk 88 % used (3.00 GB free): offload soon",
    ]
    n.stop()


def test_the_coordinator_s_daily_summary_names_each_node(receiver: Receiver) -> None:
    notifier = notifier_for(receiver, device="coordinator")
    state = fleet_with_one_node()
    state.contact("cam-l", 3.0)
    FleetAlerts(notifier, state).send_summary(dt.date(2026, 2, 8))
    assert notifier.flush(10)
    (body,) = receiver.bodies("/hook")
    assert body["level"] == "INFO"
    assert body["message"] == (
        "coordinator Daily Summary - 2026-02-08\n\n"
        "Backup: Complete\n"
        "Nodes: 1 of 1 online\n"
        "- cam-l (CAM_L): online\n\n"
        "No errors today."
    )


@pytest.mark.slow
def test_a_real_coordinator_tells_a_corrupt_offload(tmp_path: Path, receiver: Receiver) -> None:
    from tests.offload_helpers import offload, plant, wait_known

    running = RunningFleet(
        root=tmp_path, coordinator_env={"CAMFLEET_NOTIFICATIONS__WEBHOOK_URL": f"{receiver.url}/h"}
    )
    try:
        running.start_coordinator()
        running.start_agent("CAM_C", "centre")
        running.wait_online(1)
        m = plant(running, "CAM_C", "CORRUPT", 200_000)
        on_disk = running.recordings_dir("CAM_C") / m.file_name
        data = bytearray(on_disk.read_bytes())
        data[1234] ^= 0x01  # one bit, after the manifest was written
        on_disk.write_bytes(bytes(data))
        with running.client() as c:
            wait_known(c, 1, m.session_id)
            job = offload(c, {"session_id": m.session_id})
            assert job["files"][0]["state"] == "corrupt"
        (got,) = receiver.wait_for(1, timeout_s=10)
    finally:
        stop_all(running.children(), timeout_s=20)
    assert got.body["level"] == "ERROR" and got.body["device_id"] == "coordinator"
    assert got.body["message"].startswith(
        f"offload of {m.file_name} from cam-c (CAM_C) is corrupt: SHA-256 mismatch"
    )
    assert len(receiver.received) == 1
