"""The live view's parts: MJPEG framing, the watchdog's decisions, the CPU meter, the frame
sources (synthetic, fake picamera2's lores stream) and the service's viewers and turn-off."""

from __future__ import annotations

import asyncio
import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from common.mjpeg import MjpegError, MjpegParser, final_part, frame_part
from node_agent.camera.factory import make_backend
from node_agent.camera.lores import LoresCapable
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.errors import NotFound
from node_agent.liveview.cpu import CpuMeter
from node_agent.liveview.service import End, LiveOff, LiveView
from node_agent.liveview.settings import LiveViewSettings
from node_agent.liveview.source import LiveSource, LiveUnavailable, with_lores
from node_agent.liveview.watchdog import DropCounter, Health, Watchdog, verdict

FAKE_DIR = Path(__file__).parent / "fake_picamera2"


def jpeg(width: int = 8, height: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buf, format="JPEG")
    return buf.getvalue()


# -- MJPEG framing ----------------------------------------------------------------------------


def test_frames_and_final_reason_round_trip_in_any_chunking() -> None:
    frames = [jpeg(8, 8), jpeg(16, 8), jpeg(8, 16)]
    stream = b"".join(frame_part(f) for f in frames) + final_part("CPU at 97 %")
    for size in (1, 7, 64, len(stream)):
        parser = MjpegParser(max_part_bytes=1 << 20)
        parts = []
        for at in range(0, len(stream), size):
            parts += parser.feed(stream[at : at + size])
        assert [p.body for p in parts if p.is_jpeg] == frames
        assert [p.body for p in parts if not p.is_jpeg] == [b"CPU at 97 %"]
        assert parser.closed


def test_a_part_over_the_cap_is_refused_before_its_body_is_read() -> None:
    parser = MjpegParser(max_part_bytes=100)
    head = frame_part(b"x" * 5000)[:120]  # the head and a little of the body
    with pytest.raises(MjpegError, match="over the 100-byte cap"):
        parser.feed(head)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"--other\r\nContent-Length: 3\r\n\r\nabc\r\n", "expected the boundary"),
        (b"--camfleetframe\r\nContent-Type: image/jpeg\r\n\r\nabc", "no Content-Length"),
        (b"--camfleetframe\r\nContent-Length: 3\r\n\r\nabcdef", "longer than its Content-Length"),
        (b"x" * 2000, "head is too long"),
    ],
)
def test_malformed_streams_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(MjpegError, match=message):
        MjpegParser(1 << 20).feed(data)


# -- the watchdog -----------------------------------------------------------------------------

S = LiveViewSettings(max_cpu_percent=80, min_encode_fps_ratio=0.9, max_dropped_frames=5)


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        (Health(cpu_percent=None), None),
        (Health(cpu_percent=99.0), None),  # idle: nothing to give way to
        (Health(cpu_percent=50.0, recording=True, encode_fps=30.0, fps=30.0), None),
        (Health(cpu_percent=80.0, recording=True, encode_fps=30.0, fps=30.0), None),
        (Health(cpu_percent=80.5, recording=True, encode_fps=30.0, fps=30.0), "CPU at 80 %"),
        (Health(cpu_percent=None, recording=True, encode_fps=30.0, fps=30.0), None),
        (Health(cpu_percent=10.0, recording=True, encode_fps=0.0, fps=30.0), None),  # not measured
        (Health(cpu_percent=10.0, recording=True, encode_fps=27.0, fps=30.0), None),  # exactly 90 %
        (Health(cpu_percent=10.0, recording=True, encode_fps=26.9, fps=30.0), "encodes 26.9 fps"),
        (
            Health(cpu_percent=10.0, recording=True, encode_fps=30, fps=30, dropped_since_start=5),
            None,
        ),
        (
            Health(cpu_percent=10.0, recording=True, encode_fps=30, fps=30, dropped_since_start=6),
            "dropped 6 frames",
        ),
        (Health(cpu_percent=95.0, recording=True, encode_fps=5.0, fps=30.0), "CPU at 95 %"),
    ],
)
def test_watchdog_decisions(health: Health, expected: str | None) -> None:
    why = verdict(health, S)
    if expected is None:
        assert why is None
    else:
        assert why is not None and expected in why


def test_drops_are_counted_from_the_view_start_and_per_session() -> None:
    drops = DropCounter()
    h = Health(cpu_percent=None, recording=True, fps=30, session_id="A", dropped_since_start=40)
    assert drops.since_start(h).dropped_since_start == 0
    assert drops.since_start(Health(None, True, 30, 30, 47, "A")).dropped_since_start == 7
    assert drops.since_start(Health(None, True, 30, 30, 3, "B")).dropped_since_start == 0
    drops.restart()
    assert drops.since_start(Health(None, True, 30, 30, 50, "A")).dropped_since_start == 0


def test_a_limit_must_hold_for_sustain_s_without_a_break() -> None:
    dog = Watchdog(LiveViewSettings(max_cpu_percent=80, sustain_s=2.0))
    hot = Health(cpu_percent=95.0, recording=True, fps=30.0)
    cool = Health(cpu_percent=20.0, recording=True, fps=30.0)
    assert dog.observe(hot, 10.0) is None
    assert dog.observe(hot, 11.5) is None
    assert dog.observe(cool, 11.9) is None  # a break: the count starts again
    assert dog.observe(hot, 12.0) is None
    assert dog.observe(hot, 13.9) is None
    why = dog.observe(hot, 14.0)
    assert why is not None and "CPU at 95 %" in why
    assert Watchdog(LiveViewSettings(sustain_s=0)).observe(hot, 0.0) is not None


def test_cpu_meter_reads_the_share_not_idle(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n")
    meter = CpuMeter(stat)
    assert meter.percent() is None  # the first reading has nothing to compare with
    stat.write_text("cpu  400 0 400 800 100 0 0 0 0 0\n")  # +600 busy, +100 idle
    assert meter.percent() == pytest.approx(600 / 700 * 100)
    stat.write_text("garbage\n")
    assert meter.percent() is None
    assert CpuMeter(tmp_path / "missing").percent() is None


# -- frame sources ----------------------------------------------------------------------------


def fake_recorder(job: Any = None, source: str = "synthetic", owner: str | None = None) -> Any:
    return SimpleNamespace(
        active_job=lambda: job,
        camera=SimpleNamespace(source=source),
        lock=SimpleNamespace(owner=owner),
        profiles=SimpleNamespace(current=SimpleNamespace(fps=30.0)),
        identity=SimpleNamespace(cam_id="CAM_C"),
    )


def test_a_synthetic_recordings_frames_are_scaled_to_the_live_size() -> None:
    cam = SyntheticCamera(1280, 720, 30.0, "CAM_C")
    cam.open()
    got = cam.read(1.0, threading.Event())
    assert got is not None
    job = SimpleNamespace(backend=cam, latest=got)
    source = LiveSource(fake_recorder(job), LiveViewSettings())
    frame = source.grab()
    assert frame is not None and (frame.width, frame.height) == (640, 360)
    assert source.kind == "recording"
    assert (got.frame.width, got.frame.height) == (1280, 720)  # the recording's is untouched
    # The same picture: the frame's Y plane scaled down matches the live frame's brightness.
    full = got.frame.to_ndarray()[:720].astype(float)
    small = frame.reformat(format="gray").to_ndarray().astype(float)
    assert abs(full.mean() - small.mean()) < 6


def test_an_armed_recording_without_frames_yet_gives_nothing() -> None:
    job = SimpleNamespace(backend=SyntheticCamera(320, 240), latest=None)
    assert LiveSource(fake_recorder(job), LiveViewSettings()).grab() is None


def test_idle_synthetic_camera_streams_but_an_idle_real_camera_is_refused() -> None:
    source = LiveSource(fake_recorder(None), LiveViewSettings(width=320, height=180))
    frame = source.grab()
    assert frame is not None and (frame.width, frame.height) == (320, 180)
    assert source.kind == "idle"
    source.close_idle()
    with pytest.raises(LiveUnavailable, match=r"picamera2.*not recording"):
        LiveSource(fake_recorder(None, source="picamera2"), LiveViewSettings()).check()
    with pytest.raises(LiveUnavailable, match=r"busy \(timelapse\)"):
        LiveSource(fake_recorder(None, owner="timelapse"), LiveViewSettings()).check()


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake picamera2 on sys.path, reset."""

    def forget() -> None:
        for name in [n for n in sys.modules if n == "picamera2" or n.startswith("picamera2.")]:
            del sys.modules[name]

    forget()
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    from picamera2._rig import rig as fake_rig

    fake_rig.reset()
    try:
        yield fake_rig
    finally:
        fake_rig.reset()
        forget()


def test_picamera2_streams_a_lores_beside_main_and_the_view_reads_it(rig: Any) -> None:
    from picamera2._rig import expected_planes

    factory = with_lores(make_backend, LiveViewSettings(width=640, height=360))
    cam = factory("picamera2", 1280, 720, 30.0, "CAM_C")
    assert isinstance(cam, LoresCapable)
    cam.open()
    try:
        config = cam._cam.camera_config  # type: ignore[attr-defined]
        assert config["lores"]["size"] == (640, 360) and config["lores"]["format"] == "YUV420"
        assert config["lores"]["stride"] == 640 and config["main"]["size"] == (1280, 720)
        got = cam.read(2.0, threading.Event())
        assert got is not None and (got.frame.width, got.frame.height) == (1280, 720)
        small = cam.latest_lores()
        assert small is not None and (small.width, small.height) == (640, 360)
        # The lores frame is the same request's: its planes are that frame's, padding gone.
        seq = cam._cam.frames - 1  # type: ignore[attr-defined]
        y = small.to_ndarray()[:360]
        candidates = [expected_planes(s, 640, 360)[0] for s in range(max(0, seq - 3), seq + 1)]
        assert any(np.array_equal(y, c) for c in candidates)
        job = SimpleNamespace(backend=cam, latest=got)
        source = LiveSource(fake_recorder(job, source="picamera2"), LiveViewSettings())
        frame = source.grab()
        assert frame is not None and (frame.width, frame.height) == (640, 360)
        assert source.kind == "lores"
    finally:
        cam.close()


def test_picamera2_asks_no_lores_unless_told_nor_one_larger_than_main(rig: Any) -> None:
    plain = make_backend("picamera2", 640, 360, 30.0)
    small = with_lores(make_backend, LiveViewSettings(width=640, height=360))
    tiny_main = small("picamera2", 320, 240, 30.0)
    for cam in (plain, tiny_main):
        cam.open()
        try:
            assert cam._cam.camera_config["lores"] is None  # type: ignore[attr-defined]
            assert cam.read(2.0, threading.Event()) is not None
            assert cam.latest_lores() is None  # type: ignore[attr-defined]
        finally:
            cam.close()


def test_fake_picamera2_refuses_a_lores_larger_than_main(rig: Any) -> None:
    from picamera2 import Picamera2

    with Picamera2() as cam:
        config = cam.create_video_configuration(
            main={"size": (320, 240), "format": "YUV420"},
            lores={"size": (640, 360), "format": "YUV420"},
        )
        with pytest.raises(RuntimeError, match="may not exceed main"):
            cam.configure(config)


# -- the service ------------------------------------------------------------------------------


class StillSource:
    """A frame source that always has a frame."""

    kind = "recording"

    def __init__(self) -> None:
        self.frame = av.VideoFrame.from_ndarray(
            np.zeros((36, 64, 3), dtype=np.uint8), format="rgb24"
        )

    def check(self) -> None:
        pass

    def grab(self) -> av.VideoFrame:
        return self.frame

    def close_idle(self) -> None:
        pass


def test_viewers_get_frames_and_the_watchdog_ends_them_with_its_reason() -> None:
    reading = {"h": Health(cpu_percent=20.0, recording=True, encode_fps=30.0, fps=30.0)}
    settings = LiveViewSettings(
        width=128,
        height=72,
        fps=10,
        max_clients=2,
        check_interval_s=0.05,
        cooldown_s=30,
        sustain_s=0.2,
    )
    live = LiveView(settings, StillSource(), lambda: reading["h"])  # type: ignore[arg-type]

    async def scenario() -> None:
        a, b = live.admit(), live.admit()
        with pytest.raises(LiveOff, match="already has 2 viewer"):
            live.admit()
        for viewer in (a, b):
            item = await asyncio.wait_for(viewer.queue.get(), 5)
            assert isinstance(item, bytes) and item.startswith(b"\xff\xd8")
        assert live.status().state == "streaming" and live.status().clients == 2
        reading["h"] = Health(cpu_percent=97.0, recording=True, encode_fps=30.0, fps=30.0)
        for viewer in (a, b):
            while not isinstance(item := await asyncio.wait_for(viewer.queue.get(), 5), End):
                pass
            assert "CPU at 97 %" in item.reason
        with pytest.raises(LiveOff, match=r"turned itself off: CPU at 97 %.*again in 30 s"):
            live.admit()
        status = live.status()
        assert status.state == "cooling" and status.clients == 0
        assert status.off_reason is not None and "CPU at 97 %" in status.off_reason

    asyncio.run(scenario())


def test_a_slow_viewer_holds_only_the_newest_frame_and_others_keep_flowing() -> None:
    health = Health(cpu_percent=None)
    settings = LiveViewSettings(width=128, height=72, fps=10, max_clients=2)
    live = LiveView(settings, StillSource(), lambda: health)  # type: ignore[arg-type]

    async def scenario() -> None:
        slow, fast = live.admit(), live.admit()
        for _ in range(5):  # the fast one takes five frames while the slow one takes none
            await asyncio.wait_for(fast.queue.get(), 5)
        assert slow.queue.qsize() == 1  # never more than one waiting
        live.leave(slow)
        live.leave(fast)

    asyncio.run(scenario())
    assert live.frames_encoded >= 5


def test_disabled_view_is_a_404() -> None:
    live = LiveView(LiveViewSettings(enabled=False), StillSource(), lambda: Health(None))  # type: ignore[arg-type]

    async def scenario() -> None:
        with pytest.raises(NotFound, match=r"liveview\.enabled is false"):
            live.admit()

    asyncio.run(scenario())
    assert live.status().state == "disabled"
