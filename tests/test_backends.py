"""The real camera backends against faithful stand-ins.

picamera2: a fake ``picamera2`` package (tests/fake_picamera2) that mirrors the API
the backend calls and simulates the camera's event loop, no camera, a busy camera,
a sensor that goes silent and calls that hang. V4L2: the device logic against real
files and /dev/null, the decode/convert/stamp path against recorded streams read
through the same PyAV code, and a v4l2loopback device when the kernel offers one.
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from node_agent.camera.discovery import (
    V4l2Device,
    describe_path,
    find_capture_devices,
    inspect_device,
    parse_querycap,
    query_caps,
    resolve_device,
)
from node_agent.camera.factory import make_backend
from node_agent.camera.frameclock import FrameClock, classify_timestamp
from node_agent.camera.picamera2 import Picamera2Camera, yuv420_array_to_frame
from node_agent.camera.protocol import CameraError, CapturedFrame
from node_agent.camera.survey import CameraSurvey, describe_cameras, survey_cameras
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.camera.v4l2 import V4l2Camera

FAKE_DIR = Path(__file__).parent / "fake_picamera2"
S = 1_000_000_000


def _forget_picamera2() -> None:
    for name in [n for n in sys.modules if n == "picamera2" or n.startswith("picamera2.")]:
        del sys.modules[name]


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fake picamera2 on sys.path, reset; calls left hanging are let go afterwards."""
    _forget_picamera2()
    monkeypatch.syspath_prepend(str(FAKE_DIR))
    from picamera2._rig import rig as fake_rig

    fake_rig.reset()
    try:
        yield fake_rig
    finally:
        fake_rig.reset()
        _forget_picamera2()


@pytest.fixture
def no_picamera2(monkeypatch: pytest.MonkeyPatch) -> None:
    """picamera2 as on a laptop: not installed (skips where a real one is)."""
    _forget_picamera2()
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p) != FAKE_DIR])
    if importlib.util.find_spec("picamera2") is not None:
        pytest.skip("a real picamera2 is installed here")


@pytest.fixture
def opened() -> Iterator[list[Any]]:
    """Backends a test opens; each is closed afterwards, whatever happened."""
    cams: list[Any] = []
    yield cams
    for cam in cams:
        cam.close()


def read_n(cam: Any, n: int, timeout_s: float = 2.0) -> list[CapturedFrame]:
    out = []
    for _ in range(n):
        captured = cam.read(timeout_s, threading.Event())
        assert captured is not None
        out.append(captured)
    return out


def encode_and_decode(frames: list[av.VideoFrame], fps: int) -> list[np.ndarray]:
    """The frames through libx264 into a fragmented MP4 in memory, and decoded back."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        for i, frame in enumerate(frames):
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    buf.seek(0)
    with av.open(buf, mode="r") as back:
        return [f.to_ndarray() for f in back.decode(video=0)]


# --- picamera2 --------------------------------------------------------------------


def test_picamera2_frames_come_in_order_at_the_configured_rate(rig: Any, opened: list[Any]) -> None:
    cam = Picamera2Camera(320, 240, 60.0)
    opened.append(cam)
    cam.open()
    t0 = time.monotonic()
    frames = read_n(cam, 30)
    took = time.monotonic() - t0
    stamps = [f.capture_ns for f in frames]
    gaps = np.diff(stamps)
    assert (gaps > 0).all()
    assert np.median(gaps) == pytest.approx(S / 60, rel=0.02)
    assert took == pytest.approx(30 / 60, abs=0.15)


def test_picamera2_a_slow_reader_loses_frames_but_never_gets_them_out_of_order(
    rig: Any, opened: list[Any]
) -> None:
    cam = Picamera2Camera(320, 240, 60.0)
    opened.append(cam)
    cam.open()
    stamps = []
    for _ in range(6):
        stamps.append(read_n(cam, 1)[0].capture_ns)
        time.sleep(3 / 60)
    gaps = np.diff(stamps) / (S / 60)
    assert (gaps >= 1).all() and (gaps > 1.5).any()  # later frames, some skipped
    assert np.allclose(gaps, np.round(gaps), atol=0.01)  # whole frame periods
    assert rig.outstanding <= 1  # requests are released, not hoarded


def test_picamera2_capture_ns_is_the_wall_clock_instant_of_the_frame(
    rig: Any, opened: list[Any]
) -> None:
    cam = Picamera2Camera(320, 240, 30.0)
    opened.append(cam)
    cam.open()
    cam.begin(time.time_ns(), time.monotonic_ns())
    captured = read_n(cam, 3)[-1]
    age_ns = time.time_ns() - captured.capture_ns
    # The fake stamps frames on CLOCK_MONOTONIC at their slot, as a Pi's driver does;
    # picamera2 may hand over the one finished frame it keeps, so up to 2 periods old.
    assert -2_000_000 < age_ns < 2 * S // 30 + 50_000_000


def test_picamera2_frames_have_the_requested_size_and_pixels_despite_stride_padding(
    rig: Any, opened: list[Any]
) -> None:
    from picamera2._rig import expected_planes

    cam = Picamera2Camera(360, 240, 60.0)  # libcamera pads 360 to a 384-byte stride
    opened.append(cam)
    cam.open()
    frame = read_n(cam, 1)[0].frame
    assert (frame.width, frame.height, frame.format.name) == (360, 240, "yuv420p")
    yuv = frame.to_ndarray()
    seq = next(s for s in range(600) if (yuv[:240] == expected_planes(s, 360, 240)[0]).all())
    _, u, v = expected_planes(seq, 360, 240)
    chroma = yuv[240:].reshape(-1)
    assert (chroma[: 180 * 120] == u.reshape(-1)).all()
    assert (chroma[180 * 120 :] == v.reshape(-1)).all()


def test_yuv420_array_of_the_wrong_shape_is_a_camera_error() -> None:
    with pytest.raises(CameraError, match="YUV420 buffer"):
        yuv420_array_to_frame(np.zeros((100, 384), dtype=np.uint8), 360, 240)


def test_picamera2_silent_sensor_times_out_with_camera_error_and_still_closes(
    rig: Any, opened: list[Any]
) -> None:
    cam = Picamera2Camera(320, 240, 30.0)
    opened.append(cam)
    cam.open()
    read_n(cam, 2)
    rig.go_silent()
    t0 = time.monotonic()
    with pytest.raises(CameraError, match=r"no frame from the Pi camera imx708 for 0.3 s"):
        cam.read(0.3, threading.Event())
    assert time.monotonic() - t0 == pytest.approx(0.3, abs=0.15)
    t0 = time.monotonic()
    cam.close()
    assert time.monotonic() - t0 < 1.0
    assert rig.open_cameras == set() and rig.outstanding == 0


def test_picamera2_hang_after_n_frames_from_the_environment(
    rig: Any, opened: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_PICAMERA2_HANG_AFTER", "3")
    rig.reset()
    cam = Picamera2Camera(320, 240, 60.0)
    opened.append(cam)
    cam.open()
    read_n(cam, 3)
    with pytest.raises(CameraError, match="stopped delivering"):
        cam.read(0.2, threading.Event())


def test_picamera2_cancel_returns_none_and_the_abandoned_frame_is_released(
    rig: Any, opened: list[Any]
) -> None:
    cam = Picamera2Camera(320, 240, 60.0)
    opened.append(cam)
    cam.open()
    read_n(cam, 1)
    rig.go_silent()
    cancel = threading.Event()
    result: list[Any] = []
    # A frame the sensor sent just before it went silent may still wait in the queue
    # (under load, more than one): a read that returns before the cancel took one of
    # those; the next read is the one left waiting.
    for _ in range(5):
        result.clear()
        reader = threading.Thread(target=lambda: result.append(cam.read(5.0, cancel)))
        reader.start()
        time.sleep(0.1)
        if not result:
            break
        reader.join()
        assert result[0] is not None  # a frame sent before the silence, not a cancel
    t0 = time.monotonic()
    cancel.set()
    reader.join(2)
    assert result == [None] and time.monotonic() - t0 < 0.2
    assert cam.read(1.0, cancel) is None  # a set cancel returns at once
    rig.resume()  # the abandoned job now takes a frame, which must go back to libcamera
    read_n(cam, 5)
    cam.close()  # picamera2 keeps one finished request until it stops; nothing else is held
    assert rig.outstanding == 0 and rig.dropped_no_buffer == 0


def test_picamera2_close_twice_is_fine_and_a_closed_camera_does_not_read(
    rig: Any, opened: list[Any]
) -> None:
    cam = Picamera2Camera(320, 240, 30.0)
    cam.open()
    read_n(cam, 1)
    cam.close()
    cam.close()
    assert rig.open_cameras == set()
    with pytest.raises(CameraError, match="not open"):
        cam.read(0.5, threading.Event())
    cam.open()  # and it opens again
    opened.append(cam)
    read_n(cam, 1)


def test_picamera2_without_a_camera_says_so(rig: Any) -> None:
    rig.cameras = []
    cam = Picamera2Camera(320, 240, 30.0)
    with pytest.raises(CameraError, match=r"libcamera sees no CSI camera: check the ribbon cable"):
        cam.open()


def test_picamera2_leaves_usb_cameras_to_v4l2(rig: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_PICAMERA2_CAMERAS", "0")
    monkeypatch.setenv("FAKE_PICAMERA2_USB_CAMERAS", "1")
    rig.reset()
    with pytest.raises(CameraError, match=r"only 1 USB camera\(s\), recorded through V4L2"):
        Picamera2Camera(320, 240, 30.0).open()


def test_picamera2_busy_camera_names_the_cause(rig: Any, opened: list[Any]) -> None:
    first = Picamera2Camera(320, 240, 30.0)
    opened.append(first)
    first.open()
    with pytest.raises(CameraError, match="Device or resource busy"):
        Picamera2Camera(320, 240, 30.0).open()


def test_picamera2_open_that_hangs_times_out_and_the_late_camera_is_closed(
    rig: Any, opened: list[Any]
) -> None:
    rig.open_hangs = True
    cam = Picamera2Camera(320, 240, 30.0, open_timeout_s=0.3)
    with pytest.raises(CameraError, match=r"starting the Pi camera did not finish within 0.3 s"):
        cam.open()
    with pytest.raises(CameraError, match="still stuck"):
        cam.open()
    rig.reset()  # the stuck call returns; the camera it opened is closed behind it
    deadline = time.monotonic() + 2
    assert cam._stuck is not None
    while time.monotonic() < deadline and (rig.open_cameras or cam._stuck.is_alive()):
        time.sleep(0.01)
    assert rig.open_cameras == set()
    opened.append(cam)
    cam.open()
    read_n(cam, 1)


def test_picamera2_stop_that_hangs_does_not_hang_close(rig: Any) -> None:
    cam = Picamera2Camera(320, 240, 30.0, close_timeout_s=0.3)
    cam.open()
    rig.stop_hangs = True
    t0 = time.monotonic()
    cam.close()
    assert time.monotonic() - t0 < 1.0
    with pytest.raises(CameraError, match="still stuck"):
        cam.open()


def test_picamera2_still_is_a_copy_of_a_recent_frame_or_a_fresh_one(
    rig: Any, opened: list[Any]
) -> None:
    cam = Picamera2Camera(320, 240, 30.0)
    opened.append(cam)
    cam.open()
    idle = cam.still()  # nothing read yet: captures one
    assert (idle.width, idle.height, idle.format.name) == (320, 240, "yuv420p")
    latest = read_n(cam, 1)[0].frame
    still = cam.still()
    assert still is not latest and (still.to_ndarray() == latest.to_ndarray()).all()


def test_picamera2_first_still_waits_for_auto_exposure(rig: Any, opened: list[Any]) -> None:
    from node_agent.camera.picamera2 import SETTLE_S

    cam = Picamera2Camera(320, 240, 30.0)
    opened.append(cam)
    cam.open()
    t0 = time.monotonic()
    cam.still()  # right after open: a dark, tinted frame unless it waits
    assert time.monotonic() - t0 >= SETTLE_S - 0.05
    t0 = time.monotonic()
    cam.still()  # settled: at once
    assert time.monotonic() - t0 < SETTLE_S / 2


def test_picamera2_frames_encode_with_libx264(rig: Any, opened: list[Any]) -> None:
    cam = Picamera2Camera(360, 240, 60.0)
    opened.append(cam)
    cam.open()
    frames = [c.frame for c in read_n(cam, 8)]
    assert all(f.pts is None and f.time_base is None for f in frames)
    back = encode_and_decode(frames, 60)
    assert len(back) == 8 and back[0].shape == (240 * 3 // 2, 360)


# --- choosing a camera --------------------------------------------------------------


def test_auto_picks_picamera2_when_it_sees_a_csi_camera_without_opening_it(rig: Any) -> None:
    cam = make_backend("auto", 320, 240, 30.0, "CAM_C")
    assert isinstance(cam, Picamera2Camera) and (cam.width, cam.height, cam.fps) == (320, 240, 30)
    assert rig.open_cameras == set()
    assert describe_cameras().startswith("auto: picamera2 imx708 (/base/axi/")


def test_auto_with_picamera2_but_no_csi_camera_reports_both_findings(
    rig: Any, tmp_path: Path
) -> None:
    rig.cameras = []
    survey = survey_cameras(dev_dir=tmp_path)
    assert survey.choice is None
    assert survey.summary() == (
        f"no camera found: libcamera sees no CSI camera; no {tmp_path}/video* devices"
    )


def test_auto_without_picamera2_or_video_devices_says_what_it_tried(
    no_picamera2: None, tmp_path: Path
) -> None:
    message = survey_cameras(dev_dir=tmp_path).summary()
    assert message.startswith("no camera found: picamera2 is not installed (apt install")
    assert message.endswith(f"; no {tmp_path}/video* devices")
    if list(Path("/dev").glob("video*")):
        return  # this machine has V4L2 nodes; the real /dev case is covered above
    with pytest.raises(
        CameraError, match=r"^no camera found: picamera2 is not installed.*/dev/video"
    ):
        make_backend("auto", 320, 240, 30.0)


def test_the_device_setting_wins_in_auto_and_a_missing_device_fails_at_open(rig: Any) -> None:
    cam = make_backend("auto", 320, 240, 30.0, device="/dev/video42")
    assert isinstance(cam, V4l2Camera) and cam.device == "/dev/video42"
    with pytest.raises(
        CameraError, match=r"/dev/video42 does not exist \(is the camera plugged in"
    ):
        cam.open()
    assert describe_cameras("auto", "/dev/video42").startswith(
        "auto: camera.device /dev/video42: /dev/video42 does not exist"
    )


def test_survey_prefers_the_device_setting_then_csi_then_v4l2() -> None:
    usb = V4l2Device(Path("/dev/video0"), "HD Pro Webcam C920", "uvcvideo", "usb-0000:01:00.0-1.2")
    assert CameraSurvey(["imx708 (i2c)"], None, [usb]).choice == "picamera2"
    assert CameraSurvey([], "not installed", [usb]).choice == "v4l2"
    assert CameraSurvey(["imx708 (i2c)"], None, [usb], device="0").choice == "v4l2"
    assert CameraSurvey([], "not installed", [], "no /dev/video* devices").choice is None
    assert CameraSurvey([], "x", [usb]).summary() == (
        "V4L2 /dev/video0 (HD Pro Webcam C920, usb-0000:01:00.0-1.2)"
    )


def test_make_backend_names_the_sources_it_knows() -> None:
    assert isinstance(make_backend("synthetic", 320, 240, 30.0, "CAM_L"), SyntheticCamera)
    with pytest.raises(CameraError, match="choose one of: auto, picamera2, v4l2, synthetic"):
        make_backend("gopro", 320, 240, 30.0)
    assert describe_cameras("synthetic") == "synthetic test pattern (camera.source: synthetic)"


# --- timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        (100 * S, "monotonic"),  # a frame queued a moment ago
        (100 * S - 9 * S, "monotonic"),
        (100 * S + S // 2, "monotonic"),  # a little ahead: clocks read in another order
        (5000 * S, "boottime"),  # only boottime is near: the host was suspended
        (1_790_000_000 * S, "realtime"),  # already wall-clock
        (3 * S, None),  # a pts counting from zero
        (100 * S + 2 * S, None),  # from the future on every clock
    ],
)
def test_classify_timestamp(ts: int, expected: str | None) -> None:
    now = {"monotonic": 100 * S, "boottime": 5001 * S, "realtime": 1_790_000_001 * S}
    assert classify_timestamp(ts, now) == expected


def test_frame_clock_converts_monotonic_stamps_and_falls_back_to_arrival() -> None:
    clock = FrameClock("test")
    mono = time.monotonic_ns() - 10_000_000
    wall = clock.to_wall_ns(mono, arrival_wall_ns=0)
    assert clock.kind == "monotonic"
    assert abs(wall - (time.time_ns() - 10_000_000)) < 5_000_000
    assert clock.to_wall_ns(mono + S // 30, 0) - wall == S // 30
    odd = FrameClock("test")
    assert odd.to_wall_ns(12_345, arrival_wall_ns=777) == 777 and odd.kind == "arrival"
    assert odd.to_wall_ns(None, arrival_wall_ns=778) == 778


# --- V4L2: devices --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "path"),
    [
        ("0", "/dev/video0"),
        ("12", "/dev/video12"),
        ("video3", "/dev/video3"),
        ("/dev/video2", "/dev/video2"),
        ("/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920-video-index0", None),
    ],
)
def test_resolve_device(device: str, path: str | None) -> None:
    assert resolve_device(device) == Path(path or device)


def test_describe_path_follows_by_id_symlinks(tmp_path: Path) -> None:
    (tmp_path / "video2").touch()
    by_id = tmp_path / "v4l" / "by-id"
    by_id.mkdir(parents=True)
    link = by_id / "usb-046d_HD_Pro_Webcam_C920-video-index0"
    link.symlink_to("../../video2")
    assert describe_path(link) == f"{link} (-> {tmp_path / 'video2'})"
    assert describe_path(tmp_path / "video2") == str(tmp_path / "video2")


def querycap(driver: str, card: str, bus: str, caps: int, device_caps: int) -> bytes:
    return struct.pack(
        "16s32s32sIII12x", driver.encode(), card.encode(), bus.encode(), 0x60811, caps, device_caps
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # A Logitech C920: its video node, then its metadata node.
        (("uvcvideo", "HD Pro Webcam C920", "usb-0000:01:00.0-1.2", 0x84A00001, 0x04200001), None),
        (
            ("uvcvideo", "HD Pro Webcam C920", "usb-0000:01:00.0-1.2", 0x84A00001, 0x04A00000),
            "a metadata node",
        ),
        (
            (
                "bcm2835-codec",
                "bcm2835-codec-decode",
                "platform:bcm2835-codec",
                0x84204000,
                0x04204000,
            ),
            "codec",
        ),
        (("unicam", "unicam", "platform:fe801000.csi", 0xA5A00001, 0x25200001), "picamera2"),
        (("rkisp1", "rkisp1", "platform:rkisp1", 0x84201000, 0x04201000), "multi-planar"),
        # Old drivers without DEVICE_CAPS: the device's capabilities count.
        (("oldcam", "Old camera", "usb-1", 0x05000001, 0), None),
        (("oldcam", "Old camera", "usb-1", 0x00000001, 0), "streaming I/O"),
    ],
)
def test_querycap_tells_cameras_from_other_nodes(raw: tuple[Any, ...], reason: str | None) -> None:
    caps = parse_querycap(querycap(*raw))
    assert (caps.driver, caps.card, caps.bus_info) == raw[:3]
    found = caps.unusable_reason()
    assert (found is None) if reason is None else (reason in (found or ""))


def test_find_capture_devices_without_nodes_and_with_nodes_that_are_not_cameras(
    tmp_path: Path,
) -> None:
    assert find_capture_devices(tmp_path) == ([], f"no {tmp_path}/video* devices")
    for name in ("video10", "video2", "video-bogus"):
        (tmp_path / name).touch()
    devices, problem = find_capture_devices(tmp_path)
    assert devices == []
    assert problem == (
        f"no V4L2 capture device among 2 {tmp_path}/video* nodes ({tmp_path}/video2 is not a "
        f"V4L2 device; {tmp_path}/video10 is not a V4L2 device)"
    )


def test_a_node_that_is_not_v4l2_is_refused_before_ffmpeg_sees_it() -> None:
    assert inspect_device("/dev/null") == (None, "/dev/null is not a V4L2 device")
    with pytest.raises(OSError):
        query_caps(Path("/dev/null"))
    with pytest.raises(CameraError, match="cannot use the V4L2 camera: /dev/null is not a V4L2"):
        V4l2Camera("/dev/null", 320, 240, 30.0).open()


def test_v4l2_source_without_any_device_says_so() -> None:
    if find_capture_devices()[0]:
        pytest.skip("this machine has a V4L2 camera")
    with pytest.raises(CameraError, match=r"^camera.source is v4l2 but no"):
        make_backend("v4l2", 320, 240, 30.0)


# --- V4L2: frames, through a recorded stream ------------------------------------------


def record_stream(
    path: Path, codec: str, pix_fmt: str, size: tuple[int, int], n: int, first_us: int
) -> None:
    """What the v4l2 demuxer hands PyAV: one packet a frame, pts in µs (time base 1/1e6)."""
    w, h = size
    with av.open(str(path), "w", format="nut") as out:
        stream = out.add_stream(codec, rate=30)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        stream.time_base = stream.codec_context.time_base = Fraction(1, 1_000_000)
        for i in range(n):
            rgb = np.full((h, w, 3), (20 + 20 * i) % 256, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = first_us + i * 33_333, Fraction(1, 1_000_000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.mark.parametrize(("codec", "pix_fmt"), [("mjpeg", "yuvj422p"), ("rawvideo", "yuyv422")])
def test_v4l2_frames_are_converted_stamped_from_the_kernel_clock_and_in_order(
    tmp_path: Path, opened: list[Any], codec: str, pix_fmt: str
) -> None:
    path = tmp_path / "camera.nut"
    first_us = time.monotonic_ns() // 1000  # uvcvideo stamps on CLOCK_MONOTONIC
    first_wall = time.time_ns()
    record_stream(path, codec, pix_fmt, (352, 288), 8, first_us)
    cam = V4l2Camera(str(path), 320, 240, 30.0, av_format="nut")
    opened.append(cam)
    cam.open()
    frames = read_n(cam, 8)
    assert all(
        (f.frame.width, f.frame.height, f.frame.format.name) == (320, 240, "yuv420p")
        for f in frames
    )
    assert abs(frames[0].capture_ns - first_wall) < 5_000_000
    assert np.diff([f.capture_ns for f in frames]).tolist() == [33_333_000] * 7
    lumas = [float(f.frame.to_ndarray()[:240].mean()) for f in frames]
    assert lumas == sorted(lumas) and lumas[-1] - lumas[0] > 100  # the frames, in order
    with pytest.raises(CameraError, match=r"camera\.nut stopped \(end of stream\)"):
        cam.read(1.0, threading.Event())


def test_v4l2_stamps_on_arrival_when_the_pts_is_on_no_clock(
    tmp_path: Path, opened: list[Any]
) -> None:
    path = tmp_path / "camera.nut"
    record_stream(path, "mjpeg", "yuvj422p", (320, 240), 3, first_us=0)
    cam = V4l2Camera(str(path), 320, 240, 30.0, av_format="nut")
    opened.append(cam)
    before = time.time_ns()
    cam.open()
    captured = read_n(cam, 1)[0]
    assert before <= captured.capture_ns <= time.time_ns()
    assert cam.still().width == 320  # the latest frame, copied


def test_v4l2_a_reader_that_falls_behind_gets_recent_frames_in_order(
    tmp_path: Path, opened: list[Any]
) -> None:
    # A file delivers 40 frames at once, as a camera does over 1.3 s nobody reads.
    path = tmp_path / "camera.nut"
    record_stream(path, "rawvideo", "yuyv422", (320, 240), 40, time.monotonic_ns() // 1000)
    cam = V4l2Camera(str(path), 320, 240, 30.0, av_format="nut")
    opened.append(cam)
    cam.open()
    deadline = time.monotonic() + 2
    while cam.dropped_frames < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cam.dropped_frames == 25  # the ring keeps the newest half second
    newest = cam.still()  # the newest frame, left for read()
    frames = read_n(cam, 15)
    assert (newest.to_ndarray() == frames[-1].frame.to_ndarray()).all()
    assert np.diff([f.capture_ns for f in frames]).tolist() == [33_333_000] * 14
    with pytest.raises(CameraError, match="end of stream"):
        cam.read(1.0, threading.Event())


def test_v4l2_begin_skips_frames_from_before_the_start(tmp_path: Path, opened: list[Any]) -> None:
    path = tmp_path / "camera.nut"
    first_us = time.monotonic_ns() // 1000
    first_wall = time.time_ns()
    record_stream(path, "mjpeg", "yuvj422p", (320, 240), 10, first_us)
    cam = V4l2Camera(str(path), 320, 240, 30.0, av_format="nut")
    opened.append(cam)
    cam.open()
    start_wall = first_wall + 5 * 33_333_000 - 1_000_000
    cam.begin(start_wall, 0)
    frames = read_n(cam, 5)
    assert frames[0].capture_ns >= start_wall
    assert abs(frames[0].capture_ns - (first_wall + 5 * 33_333_000)) < 5_000_000


def test_v4l2_frames_encode_with_libx264(tmp_path: Path, opened: list[Any]) -> None:
    path = tmp_path / "camera.nut"
    record_stream(path, "mjpeg", "yuvj422p", (640, 480), 6, time.monotonic_ns() // 1000)
    cam = V4l2Camera(str(path), 320, 240, 30.0, av_format="nut")
    opened.append(cam)
    cam.open()
    frames = [c.frame for c in read_n(cam, 6)]
    # As the synthetic camera's: the recorder's pts are taken as they are, not rescaled.
    assert all(f.pts is None and f.time_base is None for f in frames)
    back = encode_and_decode(frames, 30)
    assert len(back) == 6 and back[0].shape == (360, 320)


def test_v4l2_close_twice_and_read_after_close(tmp_path: Path) -> None:
    path = tmp_path / "camera.nut"
    record_stream(path, "mjpeg", "yuvj422p", (320, 240), 2, 0)
    cam = V4l2Camera(str(path), 320, 240, 30.0, av_format="nut")
    cam.open()
    cam.close()
    cam.close()
    with pytest.raises(CameraError, match="is not open"):
        cam.read(0.5, threading.Event())


# --- V4L2: a real kernel device, when v4l2loopback is there ---------------------------


def _loopback_node() -> Path | None:
    for node in sorted(Path("/dev").glob("video*")):
        try:
            if query_caps(node).driver == "v4l2 loopback":
                return node
        except OSError:
            continue
    return None


@pytest.fixture
def loopback() -> Path:
    node = _loopback_node()
    if node is None and shutil.which("modprobe") and os.geteuid() == 0:
        subprocess.run(
            ["modprobe", "v4l2loopback", "devices=1", "exclusive_caps=0"],
            capture_output=True,
            timeout=30,
            check=False,
        )
        node = _loopback_node()
    if node is None:
        pytest.skip("v4l2loopback is not available (not loaded, and modprobe cannot load it)")
    return node


def test_v4l2_reads_frames_from_a_kernel_device(loopback: Path, opened: list[Any]) -> None:
    stop = threading.Event()
    written: list[int] = []

    def feed() -> None:
        with av.open(str(loopback), "w", format="v4l2") as out:
            stream = out.add_stream("rawvideo", rate=30)
            stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
            i = 0
            while not stop.is_set() and i < 300:
                yuv = np.full((360, 320), (16 + 2 * i) % 235, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
                frame.pts = i
                out.mux(stream.encode(frame))
                written.append(i)
                i += 1
                time.sleep(1 / 30)

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        deadline = time.monotonic() + 5
        while not written and time.monotonic() < deadline:
            time.sleep(0.01)
        cam = V4l2Camera(str(loopback), 320, 240, 30.0, input_format="yuv420p")
        opened.append(cam)
        cam.open()
        frames = read_n(cam, 10, timeout_s=3.0)
        stamps = [f.capture_ns for f in frames]
        assert (np.diff(stamps) > 0).all()
        assert abs(time.time_ns() - stamps[-1]) < S
        assert (frames[0].frame.width, frames[0].frame.height) == (320, 240)
        cam.close()
    finally:
        stop.set()
        writer.join(10)
