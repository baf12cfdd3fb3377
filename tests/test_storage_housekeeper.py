"""The housekeeper in-process, on real folders: status from the cached scan, levels, the
start gate with retention first, settings, and what a scan of thousands of files costs."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from node_agent.camera.lock import CameraLock
from node_agent.errors import GateRefused
from node_agent.metrics import AgentCollector
from node_agent.naming import lockview_name, manifest_name
from node_agent.recorder.manifest import write_manifest
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import Codec, DiskLevel, Manifest, Position, StartRequest
from node_agent.settings import CameraSettings, GateSettings, StorageSettings, load_agent_settings
from node_agent.storage.housekeeper import Housekeeper
from node_agent.storage.levels import Footage, disk_level, standing_alarm
from node_agent.telemetry.chrony import ClockMonitor
from node_agent.wiring import build_context
from tests.tmpfs import mounted_tmpfs

NOW_NS = time.time_ns() + 10**9  # a second from now: the manifest-less file is 1 s old


def make_manifest(session: str, size: int, sha: str, first_ns: int, **extra: object) -> Manifest:
    name = f"{session}_CAM_C_20260101_000000.mp4"
    fields: dict[str, object] = {
        "session_id": session,
        "cam_id": "CAM_C",
        "node_id": "cam-c",
        "position": Position.centre,
        "file_name": name,
        "scheduled_start_ns": None,
        "first_frame_ns": first_ns,
        "last_frame_ns": first_ns + 10**9,
        "clock_offset_ns": None,
        "clock_synchronized": False,
        "duration_s": 1.0,
        "frame_count": 30,
        "dropped_frames": 0,
        "width": 320,
        "height": 240,
        "fps": 30.0,
        "codec": Codec.h264,
        "encoder": "libx264",
        "bitrate_bps": 2_000_000,
        "size_bytes": size,
        "sha256": sha,
        "software_version": "9.9.9",
    }
    return Manifest.model_validate(fields | extra)


def add_recording(
    directory: Path, session: str, size: int, age_s: float, offloaded: bool = False
) -> Manifest:
    """A recording of ``size`` bytes with its manifest, ``age_s`` seconds old at NOW_NS."""
    data = os.urandom(size)
    m = make_manifest(
        session,
        size,
        hashlib.sha256(data).hexdigest(),
        NOW_NS - int(age_s * 1e9),
        offloaded=offloaded,
    )
    (directory / m.file_name).write_bytes(data)
    write_manifest(directory, m)
    return m


def keeper(directory: Path, active: str | None = None, **settings: object) -> Housekeeper:
    return Housekeeper(
        directory,
        StorageSettings.model_validate(settings),
        "cam-c",
        active_file=lambda: active,
        now_ns=lambda: NOW_NS,
    )


def test_status_reports_footage_from_the_last_scan(tmp_path: Path) -> None:
    old = add_recording(tmp_path, "S1", 10_000, 3600)
    add_recording(tmp_path, "S2", 20_000, 60)
    done = add_recording(tmp_path, "S3", 40_000, 7200, offloaded=True)
    (tmp_path / lockview_name("S3", "CAM_C")).write_bytes(b"j" * 500)
    (tmp_path / "S4_CAM_C_20260101_000000.mp4").write_bytes(b"x" * 5000)  # no manifest
    growing = add_recording(tmp_path, "S5", 9_000, 1)
    (tmp_path / ".S9_CAM_C_20260101_000000.mp4.journal.json").write_text("{}")  # hidden
    hk = keeper(tmp_path, active=growing.file_name)

    empty = hk.disk_status(2_000_000)
    assert empty.unoffloaded_count == 0 and empty.oldest_unoffloaded_age_s is None
    hk.refresh()
    d = hk.disk_status(2_000_000)
    manifest_bytes = {
        s: (tmp_path / manifest_name(s, "CAM_C")).stat().st_size for s in ("S1", "S2", "S3")
    }
    assert d.unoffloaded_count == 3  # S1, S2 and the one without a manifest; not S5
    assert (
        d.unoffloaded_bytes == 10_000 + 20_000 + 5000 + manifest_bytes["S1"] + manifest_bytes["S2"]
    )
    assert d.offloaded_bytes == done.size_bytes + 500 + manifest_bytes["S3"]
    # the manifest-less file is dated by its mtime (now), so S1 is the oldest
    assert d.oldest_unoffloaded_age_s == 3600.0
    assert old.offloaded is False
    st = os.statvfs(tmp_path)
    assert d.total_bytes == st.f_blocks * st.f_frsize and d.free_bytes > 0
    assert d.free_percent == pytest.approx(100 * d.free_bytes / d.total_bytes, abs=0.5)
    assert d.minutes_left == pytest.approx(d.free_bytes * 8 / 2_000_000 / 60, rel=0.01)
    assert d.alarm is None

    # A new recording shows only after the next scan: the status never rescans.
    add_recording(tmp_path, "S6", 1000, 10)
    assert hk.disk_status(2_000_000).unoffloaded_count == 3
    hk.refresh()
    assert hk.disk_status(2_000_000).unoffloaded_count == 4


def test_a_tick_deletes_nothing_while_free_space_is_above_the_target(tmp_path: Path) -> None:
    add_recording(tmp_path, "S1", 10_000, 100, offloaded=True)
    hk = keeper(
        tmp_path, retention_free_percent=0.001, warn_free_percent=0.001, critical_free_percent=0
    )
    assert hk.tick() is None
    assert (tmp_path / "S1_CAM_C_20260101_000000.mp4").exists()


def test_delete_offloaded_leaves_everything_else(tmp_path: Path) -> None:
    keep = add_recording(tmp_path, "S1", 10_000, 100)
    gone = add_recording(tmp_path, "S2", 20_000, 200, offloaded=True)
    (tmp_path / lockview_name("S2", "CAM_C")).write_bytes(b"j" * 500)
    active = add_recording(tmp_path, "S3", 30_000, 1, offloaded=True)  # as if being rewritten
    hk = keeper(tmp_path, active=active.file_name)
    result = hk.delete_offloaded(True)
    assert result.deleted == [
        gone.file_name,
        lockview_name("S2", "CAM_C"),
        manifest_name("S2", "CAM_C"),
    ]
    assert result.freed_bytes >= 20_500 and result.kept_unoffloaded == 1
    assert (tmp_path / keep.file_name).exists() and (tmp_path / active.file_name).exists()
    assert hk.disk_status(1).deleted_bytes_total == result.freed_bytes


def test_a_manifest_left_by_a_cut_delete_is_cleaned_up(tmp_path: Path) -> None:
    m = add_recording(tmp_path, "S1", 1000, 100, offloaded=True)
    (tmp_path / m.file_name).unlink()  # as after a crash between video and manifest
    unoffloaded = add_recording(tmp_path, "S2", 1000, 100)
    (tmp_path / unoffloaded.file_name).unlink()
    keeper(tmp_path).tick()
    assert not (tmp_path / manifest_name("S1", "CAM_C")).exists()
    assert (tmp_path / manifest_name("S2", "CAM_C")).exists()  # never without a confirmed copy


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with mounted_tmpfs(tmp_path / "disk", "4m") as mount:
        yield mount


def fill_to(directory: Path, free_target: int, session: str) -> Manifest:
    st = os.statvfs(directory)
    size = st.f_bavail * st.f_frsize - free_target - 8192
    return add_recording(directory, session, size, 50)


def test_the_start_gate_runs_retention_before_refusing(small_disk: Path, tmp_path: Path) -> None:
    four_mb = 4 * 1024 * 1024
    hk = keeper(small_disk)
    rec = Recorder(
        small_disk,
        CameraSettings(source="synthetic", width=64, height=48, fps=10, bitrate_bps=200_000),
        Identity("cam-c", "CAM_C", Position.centre, "9.9.9"),
        ClockMonitor("/nonexistent/chronyc"),
        CameraLock(tmp_path / "camera.lock"),
        StorageSettings(reserve_s=1, min_free_minutes=0),
        GateSettings(clock_policy="warn", thermal_path=tmp_path / "none"),
        keeper=hk,
    )
    offloaded = add_recording(small_disk, "S1", 600_000, 500, offloaded=True)
    kept = fill_to(small_disk, four_mb * 5 // 100, "S2")  # 5 % free: critical
    hk.refresh()
    assert hk.disk_status(200_000).level == DiskLevel.critical
    assert hk.disk_status(200_000).alarm is None  # something offloaded is left to delete
    free, refusal = hk.room_for_start(25_000)
    assert refusal is None and free >= four_mb * 15 // 100  # retention freed it first
    assert (
        not (small_disk / offloaded.file_name).exists() and (small_disk / kept.file_name).exists()
    )

    fill_to(small_disk, four_mb * 5 // 100, "S3")
    hk.refresh()
    assert hk.disk_status(200_000).alarm is not None
    with pytest.raises(GateRefused) as refused:
        rec.start(StartRequest(session_id="S4", command_id="c1"))
    reason = next(g.reason for g in refused.value.refused if g.gate == "storage")
    assert "critical 10 %" in reason and "offload and delete" in reason
    assert "2 not yet offloaded" in reason
    assert all((small_disk / f"{s}_CAM_C_20260101_000000.mp4").exists() for s in ("S2", "S3"))


def test_thousands_of_recordings_scan_once_and_status_stays_cheap(tmp_path: Path) -> None:
    n = 3000
    for i in range(n):
        add_recording(tmp_path, f"S{i}", 64, i, offloaded=i % 2 == 0)
    hk = keeper(tmp_path)
    t0 = time.perf_counter()
    hk.refresh()
    first_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    scan = hk.refresh()  # nothing changed: every manifest parse is reused
    again_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(100):
        status = hk.disk_status(2_000_000)
    status_s = (time.perf_counter() - t0) / 100
    assert len(scan.files) == n
    assert status.unoffloaded_count == n // 2 and status.offloaded_bytes > 0
    print(
        f"\n{n} recordings: first scan {first_s * 1e3:.1f} ms, rescan {again_s * 1e3:.1f} ms, "
        f"status {status_s * 1e6:.0f} µs"
    )


def test_disk_levels_and_alarm_table() -> None:
    assert disk_level(50, 15, 10) == DiskLevel.ok
    assert disk_level(15, 15, 10) == DiskLevel.ok
    assert disk_level(14.9, 15, 10) == DiskLevel.warn
    assert disk_level(10, 15, 10) == DiskLevel.warn
    assert disk_level(9.99, 15, 10) == DiskLevel.critical
    full = Footage(unoffloaded_bytes=10**9, unoffloaded_count=3)
    assert standing_alarm(DiskLevel.warn, full, None) is None
    alarm = standing_alarm(DiskLevel.critical, full, None)
    assert alarm is not None and "3 recording(s), 1.00 GB" in alarm and "offload" in alarm
    some_offloaded = Footage(10**9, 3, 10**6, 1)
    assert standing_alarm(DiskLevel.critical, some_offloaded, None) is None  # retention's turn
    assert standing_alarm(DiskLevel.ok, some_offloaded, "recording stopped: x") == (
        "recording stopped: x"
    )


def test_storage_thresholds_must_be_in_order() -> None:
    StorageSettings(critical_free_percent=5, warn_free_percent=10, retention_free_percent=20)
    for bad in (
        {"critical_free_percent": 15, "warn_free_percent": 15},
        {"warn_free_percent": 20, "retention_free_percent": 15},
        {"critical_free_percent": 30},
    ):
        with pytest.raises(ValidationError) as err:
            StorageSettings.model_validate(bad)
        assert "critical_free_percent < warn_free_percent <= retention_free_percent" in str(
            err.value
        )
    with pytest.raises(ValidationError):
        StorageSettings(housekeeping_interval_s=0)


def test_every_disk_figure_is_in_the_metrics(tmp_path: Path) -> None:
    ctx = build_context(load_agent_settings(data_dir=tmp_path / "agent"))
    add_recording(ctx.settings.recordings_path, "S1", 1000, 30)
    ctx.housekeeper.refresh()
    status = ctx.status()
    registry = CollectorRegistry()
    registry.register(AgentCollector(lambda: status))
    text = generate_latest(registry).decode()
    ids = 'cam_id="CAM_C",node="' + ctx.node_id + '"'
    for line in (
        f"camfleet_disk_unoffloaded_recordings{{{ids}}} 1.0",
        f"camfleet_disk_alarm{{{ids}}} 0.0",
        f"camfleet_retention_deleted_bytes_total{{{ids}}} 0.0",
        f'camfleet_disk_level{{cam_id="CAM_C",level="{status.disk.level.value}",'
        f'node="{ctx.node_id}"}} 1.0',
    ):
        assert line in text, text
    for name in (
        "camfleet_disk_free_ratio",
        "camfleet_disk_unoffloaded_bytes",
        "camfleet_disk_oldest_unoffloaded_age_seconds",
        "camfleet_disk_offloaded_bytes",
        "camfleet_disk_total_bytes",
    ):
        assert f"{name}{{{ids}}}" in text, name


def test_the_loop_stops_even_when_a_wake_up_races_the_stop(tmp_path: Path) -> None:
    """A recording ending at shutdown wakes the loop just as the lifespan stops it."""

    async def scenario() -> None:
        hk = keeper(tmp_path, housekeeping_interval_s=3600)
        hk.start()
        for _ in range(20):  # let its first round finish and the loop wait
            await asyncio.sleep(0.05)
        task = hk._task
        assert task is not None
        hk.request_refresh()
        await asyncio.sleep(0)  # the wake-up is delivered ...
        stopping = asyncio.create_task(hk.stop())  # ... and the cancel that follows
        done, _ = await asyncio.wait({stopping}, timeout=5)  # (asyncio.wait cancels nothing)
        assert stopping in done and task.done(), "the cancel was lost: the loop kept running"

    asyncio.run(scenario())


def test_no_round_runs_while_a_scheduled_start_is_armed(tmp_path: Path) -> None:
    """Retention would delete the offloaded recording at once; while the recorder is armed
    the loop waits, and the round runs as soon as the start has come."""
    m = add_recording(tmp_path, "S1", 4096, age_s=60, offloaded=True)
    armed = True

    async def scenario() -> None:
        nonlocal armed
        hk = Housekeeper(
            tmp_path,
            StorageSettings.model_validate(
                {
                    "critical_free_percent": 97,
                    "warn_free_percent": 98,
                    "retention_free_percent": 99.9,  # never reached here: every round deletes
                    "housekeeping_interval_s": 0.05,
                }
            ),
            "cam-c",
            now_ns=lambda: NOW_NS,
            hold=lambda: armed,
        )
        hk.start()
        try:
            await asyncio.sleep(0.6)
            assert (tmp_path / m.file_name).exists(), "a round ran while a start was armed"
            armed = False
            for _ in range(100):
                if not (tmp_path / m.file_name).exists():
                    break
                await asyncio.sleep(0.05)
            assert not (tmp_path / m.file_name).exists(), "the held round never ran"
        finally:
            await hk.stop()

    asyncio.run(scenario())
