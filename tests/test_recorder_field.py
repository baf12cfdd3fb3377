"""The recorder as a field needs it: profile fallback, gates, the camera lock, crash
recovery, a full disk, Lock View, previews and the self-test — in-process, real encoders."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest

from node_agent.camera.lock import CameraBusy, CameraLock
from node_agent.errors import GateRefused, RecordingConflict
from node_agent.naming import journal_path
from node_agent.recorder.recovery import analyse, recover
from node_agent.recorder.selftest import run_selftest
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import Codec, Position, RecorderState, StartRequest, StopRequest
from node_agent.settings import CameraSettings, GateSettings, StorageSettings
from node_agent.sync.settings import SyncSettings
from node_agent.telemetry.chrony import ClockMonitor

SMALL = {"source": "synthetic", "bitrate_min_bps": 500_000, "bitrate_max_bps": 8_000_000}


def profile(w: int, h: int, codec: str = "h264", fps: float = 30) -> dict[str, Any]:
    return {"width": w, "height": h, "fps": fps, "codec": codec, "bitrate_bps": 2_000_000}


def make(
    tmp_path: Path,
    camera: dict[str, Any] | None = None,
    storage: StorageSettings | None = None,
    gates: GateSettings | None = None,
    clock: ClockMonitor | None = None,
    lock: CameraLock | None = None,
    preview_fallback: Callable[[], bytes | None] | None = None,
    sync: SyncSettings | None = None,
) -> Recorder:
    cam = CameraSettings(**(SMALL | {"profiles": [profile(320, 240)]} | (camera or {})))
    rec_dir = tmp_path / "rec"
    rec_dir.mkdir(exist_ok=True)
    return Recorder(
        rec_dir,
        cam,
        Identity("node-1", "CAM_L", Position.left, "9.9.9"),
        clock or ClockMonitor("/nonexistent/chronyc"),
        lock or CameraLock(tmp_path / "camera.lock"),
        storage or StorageSettings(min_free_minutes=1),
        gates or GateSettings(clock_policy="warn", thermal_path=tmp_path / "no-thermal"),
        preview_fallback=preview_fallback,
        sync=sync,
    )


def record(rec: Recorder, session: str, seconds: float) -> Any:
    rec.start(StartRequest(session_id=session, command_id=f"start-{session}"))
    time.sleep(seconds)
    return asyncio.run(rec.stop(StopRequest(session_id=session, command_id=f"stop-{session}")))


def test_a_failing_h265_encoder_falls_back_to_h264_and_says_why(tmp_path: Path) -> None:
    rec = make(
        tmp_path,
        {
            "profiles": [profile(320, 240, "h265"), profile(320, 240, "h264")],
            # a genuine libx265 failure: it refuses to open with an unknown preset
            "encoder_options": {"libx265": {"preset": "no-such-preset"}},
        },
    )
    result = record(rec, "S1", 0.5)
    m = result.manifest
    assert m.codec == Codec.h264 and m.encoder == "libx264"
    assert m.profile == "320x240@30 H.264"
    assert len(m.profile_notes) == 1 and "320x240@30 H.265" in m.profile_notes[0]
    assert "libx265" in m.profile_notes[0]
    assert rec.status().profile_notes == m.profile_notes
    with av.open(str(rec.directory / m.file_name)) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def test_no_profile_left_is_a_readable_failure(tmp_path: Path) -> None:
    rec = make(
        tmp_path,
        {
            "profiles": [profile(320, 240, "h265")],
            "encoder_options": {"libx265": {"preset": "no-such-preset"}},
        },
    )
    with pytest.raises(Exception, match="no configured profile can be encoded"):
        rec.start(StartRequest(session_id="S1", command_id="c1"))
    assert list(rec.directory.iterdir()) == []


def test_a_profile_that_cannot_hold_its_frame_rate_is_left_for_the_next(tmp_path: Path) -> None:
    # 4K H.265 at 30 fps is far beyond this machine (and beyond a Pi 5)
    rec = make(
        tmp_path,
        {
            "profiles": [profile(3840, 2160, "h265"), profile(320, 240, "h264")],
            "probation_s": 2.0,
        },
    )
    first = record(rec, "S1", 3.0).manifest
    assert first.profile == "4K30 H.265"
    assert first.dropped_frames > 0.05 * (first.frame_count + first.dropped_frames)
    status = rec.status()
    assert status.profile == "320x240@30 H.264"
    assert any("4K30 H.265" in n and "dropped" in n for n in status.profile_notes)
    second = record(rec, "S2", 0.5).manifest
    assert second.profile == "320x240@30 H.264"
    assert any("4K30 H.265" in n for n in second.profile_notes)


def refused(rec: Recorder, **req: Any) -> GateRefused:
    with pytest.raises(GateRefused) as err:
        rec.start(StartRequest(session_id="S1", command_id="c1", **req))
    assert rec.status().state == RecorderState.idle
    assert list(rec.directory.glob("*.mp4")) == []
    return err.value


def test_storage_gate_refuses_when_the_plan_does_not_fit(tmp_path: Path) -> None:
    huge = profile(320, 240) | {"bitrate_bps": 400_000_000}  # 50 MB/s: hours need terabytes
    rec = make(tmp_path, {"profiles": [huge], "bitrate_max_bps": 400_000_000})
    err = refused(rec, planned_duration_s=24 * 3600)
    assert err.refused[0].gate == "storage" and "minutes fit" in err.refused[0].reason
    assert "storage" in err.message and err.status_code == 409


def test_storage_gate_refuses_an_unwritable_disk(tmp_path: Path) -> None:
    # A disk that was not mounted leaves no folder; here a file stands where it should be
    # (root can write anywhere, so permissions would not show it).
    rec = make(tmp_path)
    rec.directory.rmdir()
    rec.directory.write_text("not a folder")
    with pytest.raises(GateRefused) as err:
        rec.start(StartRequest(session_id="S1", command_id="c1"))
    gate = err.value.refused[0]
    assert gate.gate == "storage" and "not writable" in gate.reason


def test_temperature_gate_reads_sysfs(tmp_path: Path) -> None:
    thermal = tmp_path / "thermal_zone0_temp"
    thermal.write_text("91500\n")  # millidegrees, as sysfs has it
    rec = make(
        tmp_path, gates=GateSettings(clock_policy="warn", thermal_path=thermal, max_cpu_temp_c=80)
    )
    err = refused(rec)
    assert [g.gate for g in err.refused] == ["temperature"]
    assert "91.5 °C" in err.refused[0].reason
    thermal.write_text("45000\n")
    assert rec.start(StartRequest(session_id="S2", command_id="c2")).state in ("armed", "recording")
    rec.shutdown()


def fake_chronyc(tmp_path: Path, line: str) -> ClockMonitor:
    path = tmp_path / "chronyc"
    path.write_text(f"#!/bin/sh\necho '{line}'\n")
    path.chmod(0o755)
    clock = ClockMonitor(str(path))
    asyncio.run(clock.read_once())
    return clock


def test_clock_gate_refuses_a_large_bound_and_an_unsynchronized_clock(tmp_path: Path) -> None:
    # "System time" -0.020 s: this clock is 20 ms fast of its reference; root delay and
    # dispersion 0.1 ms each: the bound is 20 + 0.1 + 0.05 ms.
    off = fake_chronyc(
        tmp_path,
        "7F000001,cam-c,9,1.0,-0.020000000,0,0,0,0,0,0.0001,0.0001,2.0,Normal",
    )
    refuse = GateSettings(thermal_path=tmp_path / "no-thermal")  # the default policy
    uncorrected = SyncSettings(correct_start_by_offset=False)
    err = refused(make(tmp_path, clock=off, gates=refuse, sync=uncorrected))
    assert [g.gate for g in err.refused] == ["clock"]
    reason = err.refused[0].reason
    assert "error bound 20.150 ms exceeds 5 ms" in reason
    assert "offset +20.000 ms" in reason and "reference cam-c" in reason

    unsynced = ClockMonitor("/nonexistent/chronyc")
    asyncio.run(unsynced.read_once())
    assert refused(make(tmp_path, clock=unsynced, gates=refuse)).refused[0].gate == "clock"
    (tmp_path / "warn").mkdir()
    rec = make(tmp_path / "warn", clock=unsynced)  # make's gates: clock_policy warn
    started = rec.start(StartRequest(session_id="S2", command_id="c2"))
    assert any(w.startswith("clock: clock unsynchronized") for w in started.warnings)
    rec.shutdown()


def test_a_corrected_start_is_judged_by_the_offsets_own_error(tmp_path: Path) -> None:
    # The same 20 ms offset, but starts are shifted by it (the default): what is left is
    # root dispersion + root delay / 2 = 0.15 ms, well inside 5 ms.
    off = fake_chronyc(
        tmp_path, "7F000001,cam-c,9,1.0,-0.020000000,0,0,0,0,0,0.0001,0.0001,2.0,Normal"
    )
    gates = GateSettings(thermal_path=tmp_path / "no-thermal")
    rec = make(tmp_path, clock=off, gates=gates)
    clock = next(g for g in rec.check_gates(None) if g.gate == "clock")
    assert clock.ok and not clock.warning and "corrected by the offset" in clock.reason
    # A wide dispersion (8 ms) is not helped by the correction.
    (tmp_path / "wide").mkdir()
    wide = fake_chronyc(
        tmp_path / "wide", "7F000001,cam-c,9,1.0,-0.020000000,0,0,0,0,0,0.0001,0.008,2.0,Normal"
    )
    err = refused(make(tmp_path / "wide", clock=wide, gates=gates))
    assert "error bound of the corrected offset (root dispersion + root delay / 2) 8.050 ms" in (
        err.refused[0].reason
    )


def test_old_clock_gate_keys_still_load() -> None:
    old = GateSettings.model_validate({"max_clock_offset_ms": 2, "require_clock_sync": False})
    assert old.max_clock_error_ms == 2 and old.clock_policy == "warn"
    strict = GateSettings.model_validate({"require_clock_sync": "true"})
    assert strict.clock_policy == "refuse" and strict.max_clock_error_ms == 5
    both = GateSettings.model_validate({"require_clock_sync": False, "clock_policy": "refuse"})
    assert both.clock_policy == "refuse"  # the new key wins


def test_battery_gate_with_no_provider_assumes_mains(tmp_path: Path) -> None:
    gates = {g.gate: g for g in make(tmp_path).check_gates(None)}
    assert gates["battery"].ok and "mains power assumed" in gates["battery"].reason
    assert set(gates) == {"storage", "temperature", "battery", "clock"}


def test_camera_gate_refuses_when_there_is_no_camera(tmp_path: Path) -> None:
    rec = make(tmp_path, {"source": "v4l2", "device": str(tmp_path / "no-such-video")})
    err = refused(rec)
    assert [g.gate for g in err.refused] == ["camera"]


def test_the_camera_lock_is_shared_and_names_its_holder(tmp_path: Path) -> None:
    lock_path = tmp_path / "camera.lock"
    first = make(tmp_path, lock=CameraLock(lock_path))
    (tmp_path / "other").mkdir()
    second = make(tmp_path / "other", lock=CameraLock(lock_path))  # same camera, another owner
    first.start(StartRequest(session_id="S1", command_id="c1"))
    try:
        with pytest.raises(RecordingConflict, match="busy: recording S1"):
            second.start(StartRequest(session_id="S2", command_id="c2"))
        with pytest.raises(CameraBusy, match="recording S1"):
            second.preview_jpeg()
    finally:
        first.shutdown()
    # released with the recording: the other owner gets it now
    second.start(StartRequest(session_id="S3", command_id="c3"))
    second.shutdown()


def test_the_lock_holds_across_processes(tmp_path: Path) -> None:
    lock_path = tmp_path / "camera.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; "
            "from node_agent.camera.lock import CameraLock; "
            "CameraLock(Path(sys.argv[1])).acquire('timelapse'); print('held', flush=True); "
            "time.sleep(30)",
            str(lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        rec = make(tmp_path, lock=CameraLock(lock_path))
        t0 = time.monotonic()
        with pytest.raises(RecordingConflict, match="busy: timelapse"):
            rec.start(StartRequest(session_id="S1", command_id="c1"))
        assert time.monotonic() - t0 < 1.0  # answered at once, never waits
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout:
            holder.stdout.close()


def test_recovery_of_a_recording_cut_short(tmp_path: Path) -> None:
    """A crash leaves the file as far as it got and its journal; the next start writes an
    'interrupted' manifest whose sha256 is the file's and whose duration is what plays."""
    rec = make(tmp_path, {"profiles": [profile(320, 240)], "gop_s": 0.5})
    rec.start(StartRequest(session_id="S1", command_id="c1"))
    time.sleep(2.2)
    live = next(rec.directory.glob("*.mp4"))
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    # what a kill -9 leaves: the bytes written so far, and the journal
    shutil.copy(live, crashed / live.name)
    shutil.copy(journal_path(live), journal_path(crashed / live.name))
    rec.shutdown()
    manifests = recover(crashed, "node-1", "9.9.9")
    assert len(manifests) == 1
    m = manifests[0]
    data = (crashed / live.name).read_bytes()
    assert m.interrupted and m.stop_reason.startswith("interrupted")
    assert m.sha256 == hashlib.sha256(data).hexdigest() and m.size_bytes == len(data)
    assert 1.0 <= m.duration_s <= 2.4
    with av.open(str(crashed / live.name)) as c:
        assert sum(1 for _ in c.decode(video=0)) == m.frame_count
    on_disk = json.loads((crashed / "S1_CAM_L.json").read_text())
    assert on_disk["interrupted"] is True and on_disk["profile"] == "320x240@30 H.264"
    assert not journal_path(crashed / live.name).exists()
    assert recover(crashed, "node-1", "9.9.9") == []  # nothing left to recover


@pytest.mark.parametrize("cut", [0, 100, 0.25, 0.5, 0.75, 0.999])
def test_recovery_survives_any_truncation(tmp_path: Path, cut: float) -> None:
    rec = make(tmp_path, {"gop_s": 0.5})
    full = record(rec, "S1", 1.5).manifest
    src = rec.directory / full.file_name
    data = src.read_bytes()
    size = int(cut) if cut >= 1 or cut == 0 else int(len(data) * cut)
    out = tmp_path / "cut"
    out.mkdir()
    (out / full.file_name).write_bytes(data[:size])
    playable = analyse(out / full.file_name, 30)
    assert 0 <= playable.frames <= full.frame_count
    m = recover(out, "node-1", "9.9.9")[0]  # no journal: names and defaults suffice
    assert m.interrupted and m.sha256 == hashlib.sha256(data[:size]).hexdigest()
    assert m.frame_count == playable.frames


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MB filesystem (tmpfs); needs root, as CI has."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_filling_disk_stops_cleanly_at_the_reserve(small_disk: Path, tmp_path: Path) -> None:
    cam = CameraSettings(
        **SMALL,
        profiles=[
            {"width": 1280, "height": 720, "fps": 30, "codec": "h264", "bitrate_bps": 4_000_000}
        ],
    )
    rec = Recorder(
        small_disk,
        cam,
        Identity("node-1", "CAM_L", Position.left, "9.9.9"),
        ClockMonitor("/nonexistent/chronyc"),
        CameraLock(tmp_path / "camera.lock"),
        StorageSettings(reserve_s=4, min_free_minutes=0),  # 4 s at 4 Mb/s = 2 MB kept free
        GateSettings(clock_policy="warn", thermal_path=tmp_path / "none"),
    )
    rec.start(StartRequest(session_id="S1", command_id="c1"))
    deadline = time.monotonic() + 60
    while rec.status().state != RecorderState.idle:
        assert time.monotonic() < deadline, "the recording never stopped"
        time.sleep(0.2)
    m = asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="s1"))).manifest
    assert m is not None and m.stop_reason.startswith("disk reserve reached")
    assert rec.status().last_stop_reason == m.stop_reason
    path = small_disk / m.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == m.sha256
    with av.open(str(path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == m.frame_count > 0
    st = os.statvfs(small_disk)
    assert st.f_bavail * st.f_frsize > 1_000_000  # the reserve is still there


def test_lock_view_during_and_after_a_recording(tmp_path: Path) -> None:
    rec = make(tmp_path)
    before = rec.lockview("S0")  # idle: captured under the camera lock
    assert before.source == "camera" and (rec.directory / before.file_name).exists()
    rec.start(StartRequest(session_id="S1", command_id="c1"))
    time.sleep(0.5)
    during = rec.lockview("S1")
    assert during.source == "stream" and during.file_name == "S1_CAM_L_lockview.jpg"
    with pytest.raises(RecordingConflict, match="recording session S1"):
        rec.lockview("S9")
    m = asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="s1"))).manifest
    assert m is not None and m.lockview_file == "S1_CAM_L_lockview.jpg"
    with av.open(str(rec.directory / m.lockview_file)) as c:
        assert c.streams.video[0].codec_context.name == "mjpeg"
    # taken after the stop: the manifest on disk learns of it
    record(rec, "S2", 0.3)
    rec.lockview("S2")
    on_disk = json.loads((rec.directory / "S2_CAM_L.json").read_text())
    assert on_disk["lockview_file"] == "S2_CAM_L_lockview.jpg"


def test_preview_never_waits_for_a_busy_camera(tmp_path: Path) -> None:
    rec = make(tmp_path)
    idle = rec.preview_jpeg()
    assert idle[:2] == b"\xff\xd8"  # a JPEG
    rec.start(StartRequest(session_id="S1", command_id="c1"))
    time.sleep(0.4)
    t0 = time.monotonic()
    streaming = rec.preview_jpeg()
    assert streaming[:2] == b"\xff\xd8" and time.monotonic() - t0 < 0.5
    rec.shutdown()
    rec.lock.acquire("timelapse")
    try:
        rec.stills.forget_preview()
        t0 = time.monotonic()
        with pytest.raises(CameraBusy, match="timelapse"):
            rec.preview_jpeg()
        assert time.monotonic() - t0 < 0.5
        shown = make(
            tmp_path, lock=rec.lock, preview_fallback=lambda: b"\xff\xd8 last timelapse still"
        )
        assert shown.preview_jpeg() == b"\xff\xd8 last timelapse still"
    finally:
        rec.lock.release()


def test_selftest_passes_and_leaves_nothing_behind(tmp_path: Path) -> None:
    rec = make(tmp_path)
    result = run_selftest(rec, 1.5)
    assert result.passed, result.errors
    assert result.frames == result.decoded_frames >= 40
    assert 25 <= result.encode_fps <= 35 and result.dropped_frames == 0
    assert result.disk_write_bytes_per_s > 1e6 and len(result.sha256) == 64
    assert result.profile == "320x240@30 H.264" and result.encoder == "libx264"
    assert {g.gate for g in result.gates} == {"storage", "temperature", "battery", "clock"}
    assert list(rec.directory.iterdir()) == []
    assert rec.lock.owner is None


def test_selftest_fails_with_reasons(tmp_path: Path) -> None:
    thermal = tmp_path / "temp"
    thermal.write_text("99000")
    rec = make(tmp_path, gates=GateSettings(clock_policy="warn", thermal_path=thermal))
    result = run_selftest(rec, 1.0)
    assert not result.passed
    assert any("temperature" in e and "99.0 °C" in e for e in result.errors)
    (tmp_path / "other").mkdir()
    recording = make(tmp_path / "other", lock=rec.lock)  # same camera, cool enough to record
    recording.start(StartRequest(session_id="S1", command_id="c1"))
    try:
        busy = run_selftest(make(tmp_path, lock=CameraLock(rec.lock.path)), 1.0)
    finally:
        recording.shutdown()
    assert not busy.passed and any("busy: recording S1" in e for e in busy.errors)
