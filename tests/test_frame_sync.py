"""Frame-level sync (camera.frame_sync): libcamera's software camera sync through the
picamera2 backend, against the fake picamera2 and libcamera packages (tests/fake_picamera2),
whose cameras run libcamera's sync algorithm over UDP on loopback."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node_agent.camera.framesync import ready_frames, resolve_mode
from node_agent.camera.lock import CameraLock
from node_agent.camera.picamera2 import Picamera2Camera
from node_agent.recorder.service import Recorder
from node_agent.recorder.spec import Identity
from node_agent.schemas import Position, StartRequest, StopRequest
from node_agent.settings import CameraSettings, GateSettings
from node_agent.sync.settings import SyncSettings
from node_agent.telemetry.chrony import ClockMonitor

FAKE_DIR = Path(__file__).parent / "fake_picamera2"
FPS = 50.0
PERIOD_NS = round(1e9 / FPS)


def udp_port() -> int:
    """A UDP port nothing is bound to now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _forget() -> None:
    for name in [n for n in sys.modules if n.split(".")[0] in ("picamera2", "libcamera")]:
        del sys.modules[name]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake picamera2 and libcamera, two CSI cameras, sync on a free UDP port."""
    _forget()
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    monkeypatch.setenv("FAKE_PICAMERA2_CAMERAS", "2")
    from picamera2._rig import rig as fake_rig

    fake_rig.reset()
    fake_rig.sync_port = udp_port()
    fake_rig.sync_period = 5  # a server packet every 5 frames: quick tests
    try:
        yield fake_rig
    finally:
        fake_rig.reset()
        _forget()


@pytest.fixture
def opened() -> Iterator[list[Picamera2Camera]]:
    cams: list[Picamera2Camera] = []
    yield cams
    for cam in cams:
        cam.close()


def in_future(seconds: float) -> int:
    return time.time_ns() + round(seconds * 1e9)


def stamp(cam: Picamera2Camera) -> int:
    """The capture time of the camera's next frame."""
    got = cam.read(2, threading.Event())
    assert got is not None
    return got.capture_ns


def phase_gap_ns(a: int, b: int) -> int:
    """How far apart two frame starts are, modulo one frame period."""
    d = (a - b) % PERIOD_NS
    return min(d, PERIOD_NS - d)


def test_auto_mode_follows_the_chrony_role() -> None:
    sync = SyncSettings(master_cam_id="CAM_C")
    assert resolve_mode("auto", sync, "CAM_C") == "server"
    assert resolve_mode("auto", sync, "CAM_L") == "client"
    assert resolve_mode("auto", SyncSettings(role="master"), "CAM_L") == "server"
    assert resolve_mode("auto", SyncSettings(role="none"), "CAM_C") == "off"
    assert resolve_mode("client", sync, "CAM_C") == "client"


def test_the_server_is_ready_just_before_the_start() -> None:
    # 2 s ahead at 50 fps: 1.7 s of frames once the camera is up, never fewer than one.
    assert ready_frames(2_000_000_000, FPS) == 85
    assert ready_frames(100_000_000, FPS) == 1
    assert ready_frames(0, 30.0) == 30  # a start "now": a second for the clients


def test_a_client_lines_its_frames_up_with_the_server(
    rig: Any, opened: list[Picamera2Camera]
) -> None:
    client = Picamera2Camera(320, 240, FPS, camera_num=1)
    server = Picamera2Camera(320, 240, FPS, camera_num=0)
    opened += [client, server]
    client.configure_frame_sync("client", None)
    server.configure_frame_sync("server", 40)
    client.open()  # the client first, as Raspberry Pi advise: it waits for the server
    rig.phase_ns = PERIOD_NS * 2 // 5  # the server's frames start 8 ms out of step
    server.open()
    before = phase_gap_ns(stamp(client), stamp(server))
    assert before > PERIOD_NS // 4
    reports: dict[str, Any] = {}
    until = in_future(5)
    waiter = threading.Thread(
        target=lambda: reports.update(client=client.await_frame_sync(until, threading.Event()))
    )
    waiter.start()
    reports["server"] = server.await_frame_sync(until, threading.Event())
    waiter.join()
    for name in ("server", "client"):
        report = reports[name]
        assert report.ready, report
        assert report.mode == name and report.error is None
        # About zero on the ready frame; frames a loaded machine skips make it later.
        assert report.timer_us is not None and abs(report.timer_us) <= 5 * PERIOD_NS // 1000
    gaps = [phase_gap_ns(stamp(client), stamp(server)) for _ in range(5)]
    assert min(gaps) < 1_000_000, gaps  # frame starts now within 1 ms of each other


def test_a_client_without_a_server_times_out_and_says_so(
    rig: Any, opened: list[Picamera2Camera]
) -> None:
    client = Picamera2Camera(320, 240, FPS, camera_num=1)
    opened.append(client)
    client.configure_frame_sync("client", None)
    client.open()
    t0 = time.monotonic()
    report = client.await_frame_sync(in_future(0.6), threading.Event())
    assert 0.5 <= time.monotonic() - t0 < 2.0
    assert report.ready is False and report.timer_us is None
    assert report.error is not None and "server's camera" in report.error
    assert client.read(2, threading.Event()) is not None  # the camera still streams


def test_a_libcamera_without_sync_records_unsynchronised_and_says_so(
    rig: Any, opened: list[Picamera2Camera]
) -> None:
    rig.sync_supported = False
    cam = Picamera2Camera(320, 240, FPS)
    opened.append(cam)
    cam.configure_frame_sync("server", 10)
    cam.open()
    report = cam.await_frame_sync(in_future(1), threading.Event())
    assert report.ready is False
    assert report.error is not None and "no SyncMode control" in report.error
    assert cam.read(2, threading.Event()) is not None


def test_a_scheduled_recording_waits_for_sync_and_reports_it(rig: Any, tmp_path: Path) -> None:
    cam = CameraSettings(
        source="picamera2",
        width=320,
        height=240,
        fps=FPS,
        bitrate_bps=1_000_000,
        bitrate_min_bps=500_000,
        frame_sync="auto",
        frame_sync_timeout_s=5,
    )
    rec = Recorder(
        tmp_path,
        cam,
        Identity("node-c", "CAM_C", Position.centre, "9.9.9"),
        ClockMonitor("/nonexistent/chronyc"),
        CameraLock(tmp_path / "camera.lock"),
        gates=GateSettings(clock_policy="warn"),  # no chrony here; the camera sync is tested
        max_schedule_ahead_s=60,
        sync=SyncSettings(master_cam_id="CAM_C"),  # this camera is the sync server
    )
    start_at = in_future(1.2)
    started = rec.start(StartRequest(session_id="S1", command_id="c1", start_at_ns=start_at))
    assert started.late_ns == 0
    deadline = time.monotonic() + 10
    while rec.status().first_frame_ns is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    m = asyncio.run(rec.stop(StopRequest(session_id="S1", command_id="c2"))).manifest
    assert m is not None and m.frame_sync is not None
    assert m.frame_sync.mode == "server" and m.frame_sync.ready, m.frame_sync
    assert m.frame_sync.waited_ms < 1200  # ready before the start instant
    assert m.start_late_ns == 0
    assert m.first_frame_source == "sensor"
    # The first frame at or after the instant (frames a loaded machine skips make it later).
    assert 0 <= m.first_frame_ns - start_at < 200_000_000
