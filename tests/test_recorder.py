"""The recorder in-process: real frames, real encoders, real files."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import av
import numpy as np
import pytest

from node_agent.camera.lock import CameraLock
from node_agent.camera.synthetic import overlay_label, render_text
from node_agent.errors import NotFound, RecordingConflict
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import Codec, Position, RecorderState, StartRequest, StopRequest
from node_agent.settings import CameraSettings, GateSettings
from node_agent.telemetry.chrony import ClockMonitor
from tests.chrony import chrony_pair


def make_recorder(tmp_path: Path, clock: ClockMonitor | None = None, **camera: object) -> Recorder:
    base = {"source": "synthetic", "width": 320, "height": 240, "fps": 30.0}
    base |= {"bitrate_bps": 2_000_000, "bitrate_min_bps": 500_000}
    cam = CameraSettings(**(base | camera))
    return Recorder(
        tmp_path,
        cam,
        Identity("node-1", "CAM_L", Position.left, "9.9.9"),
        clock or ClockMonitor("/nonexistent/chronyc"),
        CameraLock(tmp_path.parent / f"{tmp_path.name}.camera.lock"),
        gates=GateSettings(clock_policy="warn", thermal_path=tmp_path / "no-thermal"),
        max_schedule_ahead_s=60,
    )


def stop(rec: Recorder, session_id: str, command_id: str = "stop-1"):
    return asyncio.run(rec.stop(StopRequest(session_id=session_id, command_id=command_id)))


def test_recording_is_playable_hashed_and_described(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    started = rec.start(StartRequest(session_id="S1", command_id="c1"))
    assert started.file_name.startswith("S1_CAM_L_") and started.file_name.endswith(".mp4")
    time.sleep(1.5)
    assert rec.state == RecorderState.recording
    result = stop(rec, "S1")
    m = result.manifest
    assert result.state == "stopped" and m is not None
    path = tmp_path / m.file_name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == m.sha256
    assert path.stat().st_size == m.size_bytes
    on_disk = json.loads((tmp_path / "S1_CAM_L.json").read_text())
    assert on_disk == json.loads(m.model_dump_json())
    assert (m.node_id, m.cam_id, m.position, m.software_version) == (
        "node-1",
        "CAM_L",
        Position.left,
        "9.9.9",
    )
    assert (m.width, m.height, m.fps, m.codec, m.encoder) == (320, 240, 30.0, Codec.h264, "libx264")
    assert m.scheduled_start_ns is None and m.clock_synchronized is False
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == m.frame_count
    assert abs(m.frame_count + m.dropped_frames - 30 * m.duration_s) <= 1
    assert 1.3 <= m.duration_s <= 2.5
    assert rec.status().state == RecorderState.idle
    assert not list(tmp_path.glob(".*tmp*"))  # the manifest's temp file was renamed away


def test_first_frame_carries_its_counter_and_capture_time(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path, width=640, height=360, bitrate_bps=8_000_000)
    rec.start(StartRequest(session_id="S2", command_id="c1"))
    time.sleep(0.5)
    m = stop(rec, "S2").manifest
    assert m is not None
    with av.open(str(tmp_path / m.file_name)) as container:
        first = next(container.decode(video=0)).to_ndarray(format="gray")
    scale = 360 // 90
    expected = render_text(overlay_label(0, m.first_frame_ns, "CAM_L"), scale)
    h, w = expected.shape
    seen = first[2 + scale : 2 + scale + h, 2 + scale : 2 + scale + w] > 128
    assert np.mean(seen == expected) > 0.97


def test_scheduled_start_waits_for_its_instant(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    start_at = time.time_ns() + 400_000_000
    result = rec.start(StartRequest(session_id="S3", command_id="c1", start_at_ns=start_at))
    assert result.scheduled and result.state == RecorderState.armed
    assert rec.state == RecorderState.armed
    time.sleep(0.8)
    m = stop(rec, "S3").manifest
    assert m is not None
    assert m.scheduled_start_ns == start_at
    assert m.first_frame_ns >= start_at  # never early


def test_a_start_that_arrives_late_begins_at_once_and_says_so(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    asked = time.time_ns() - 250_000_000  # the command took longer than the lead
    result = rec.start(StartRequest(session_id="S12", command_id="c1", start_at_ns=asked))
    assert result.scheduled and result.start_at_ns > asked
    time.sleep(0.3)
    m = stop(rec, "S12").manifest
    assert m is not None and m.scheduled_start_ns == asked
    assert m.first_frame_ns - asked >= 250_000_000


def test_stop_before_the_start_cancels_and_leaves_no_file(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    rec.start(
        StartRequest(session_id="S4", command_id="c1", start_at_ns=time.time_ns() + 5_000_000_000)
    )
    result = stop(rec, "S4")
    assert result.state == "cancelled" and result.manifest is None
    assert list(tmp_path.iterdir()) == []
    assert rec.state == RecorderState.idle


def test_commands_are_idempotent_and_conflicts_name_the_session(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    first = rec.start(StartRequest(session_id="S5", command_id="c1"))
    assert rec.start(StartRequest(session_id="S5", command_id="c1")) == first
    again = rec.start(StartRequest(session_id="S5", command_id="c2"))
    assert again.file_name == first.file_name
    with pytest.raises(RecordingConflict, match="already recording session S5"):
        rec.start(StartRequest(session_id="S6", command_id="c3"))
    time.sleep(0.3)
    one = stop(rec, "S5", "stop-a")
    assert stop(rec, "S5", "stop-a") == one
    two = stop(rec, "S5", "stop-b")  # another command id: answered from the manifest on disk
    assert two.manifest == one.manifest
    with pytest.raises(RecordingConflict, match="already recorded"):
        rec.start(StartRequest(session_id="S5", command_id="c4"))
    with pytest.raises(NotFound, match="S7"):
        stop(rec, "S7")
    assert len(list(tmp_path.glob("*.mp4"))) == 1


def test_a_start_too_far_ahead_is_refused(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    far = time.time_ns() + 3600 * 1_000_000_000
    with pytest.raises(RecordingConflict, match="ahead"):
        rec.start(StartRequest(session_id="S8", command_id="c1", start_at_ns=far))
    assert rec.state == RecorderState.idle and list(tmp_path.iterdir()) == []


def test_h265_is_selectable(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path, codec="h265")
    rec.start(StartRequest(session_id="S9", command_id="c1"))
    time.sleep(0.6)
    m = stop(rec, "S9").manifest
    assert m is not None and m.codec == Codec.h265 and m.encoder == "libx265"
    with av.open(str(tmp_path / m.file_name)) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
        assert sum(1 for _ in container.decode(video=0)) == m.frame_count


@pytest.mark.parametrize(("codec", "encoder"), [("h264", "libx264"), ("h265", "libx265")])
def test_warm_up_opens_the_encoder_and_writes_nothing(
    tmp_path: Path, codec: str, encoder: str
) -> None:
    rec = make_recorder(tmp_path, codec=codec)
    assert rec.warm_up() == encoder
    assert list(tmp_path.iterdir()) == []


def test_shutdown_finishes_the_recording(tmp_path: Path) -> None:
    rec = make_recorder(tmp_path)
    rec.start(StartRequest(session_id="S10", command_id="c1"))
    time.sleep(0.4)
    m = rec.shutdown()
    assert m is not None and m.stop_reason == "agent shutdown"
    assert hashlib.sha256((tmp_path / m.file_name).read_bytes()).hexdigest() == m.sha256


@pytest.mark.skipif(os.geteuid() != 0, reason="chronyd -u root needs root (CI runs as root)")
def test_manifest_carries_the_chrony_offset_at_start(tmp_path: Path) -> None:
    with chrony_pair(tmp_path / "chrony") as pair:
        clock = ClockMonitor(extra_args=pair.chronyc_args())
        asyncio.run(clock.read_once())
        rec = make_recorder(tmp_path / "rec", clock=clock)
        (tmp_path / "rec").mkdir()
        rec.start(StartRequest(session_id="S11", command_id="c1"))
        time.sleep(0.3)
        m = stop(rec, "S11").manifest
    assert m is not None and m.clock_synchronized is True
    assert m.clock_offset_ns == clock.latest.offset_ns
