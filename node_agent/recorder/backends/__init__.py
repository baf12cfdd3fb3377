"""Camera backends behind one protocol; hardware libraries are imported inside each backend.

A backend streams frames once opened. ``read`` hands them over in order, each with
the wall-clock instant it was captured; the recorder keeps the ones at or after its
start instant and encodes them. ``begin`` tells a backend that paces itself (the
synthetic camera) where the recording's first frame falls.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import av

if TYPE_CHECKING:
    from node_agent.recorder.backends.v4l2 import V4l2Device

log = logging.getLogger(__name__)

SOURCES = ("auto", "picamera2", "v4l2", "synthetic")

T = TypeVar("T")


class CameraError(Exception):
    """The camera could not be opened, or stopped delivering frames; the message says why."""


@dataclass(frozen=True)
class CapturedFrame:
    """One frame and the UTC instant (ns) it was captured."""

    frame: av.VideoFrame
    capture_ns: int


class CameraBackend(Protocol):
    """A source of video frames and stills."""

    name: str
    width: int
    height: int
    fps: float

    def open(self) -> None:
        """Acquire and configure the camera and start streaming; raises CameraError."""

    def begin(self, start_wall_ns: int, start_monotonic_ns: int) -> None:
        """The recording starts at this instant (both clocks, read together)."""

    def read(self, timeout_s: float, cancel: threading.Event) -> CapturedFrame | None:
        """The next frame; None when ``cancel`` was set; CameraError after ``timeout_s``."""

    def still(self) -> av.VideoFrame:
        """A frame of what the camera sees now (for stills and previews)."""

    def close(self) -> None:
        """Release the camera."""


# --- Blocking calls ------------------------------------------------------------------


class CameraWorker:
    """One daemon thread that runs a camera's blocking calls, in order.

    Callers wait on each call's Future with a deadline. A call that never returns (a
    driver stuck in the kernel) cannot be killed from Python: the thread stays blocked
    in it, calls queued behind it never run, and being a daemon it does not keep the
    agent from exiting. The camera it holds stays held until the agent restarts.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]] | None]
        self._calls = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._calls.get()) is not None:
            fn, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as err:  # handed to whoever waits on the future
                future.set_exception(err)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue ``fn``; its Future holds the result or the exception."""
        future: Future[T] = Future()
        self._calls.put((fn, future))
        return future

    def call(self, fn: Callable[[], T], timeout_s: float, what: str) -> T:
        """``fn()`` on the worker; CameraError when it takes longer than ``timeout_s``."""
        future = self.submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            raise CameraError(
                f"{what} did not finish within {timeout_s:g} s; the camera or its driver "
                "is stuck (`dmesg` may say why)"
            ) from None

    def stop(self) -> None:
        """The thread ends after the calls already queued."""
        self._calls.put(None)

    def is_alive(self) -> bool:
        """Whether the thread still runs (a stuck call keeps it alive)."""
        return self._thread.is_alive()


# --- Frame timestamps -------------------------------------------------------------
#
# Camera drivers stamp each frame in the kernel. V4L2 drivers (uvcvideo, unicam,
# rp1-cfe) use CLOCK_MONOTONIC; libcamera passes that stamp on as SensorTimestamp
# (its documentation says CLOCK_BOOTTIME, but on a Pi the value is the driver's
# CLOCK_MONOTONIC stamp, and picamera2's own `flush` compares it with
# time.monotonic_ns()). The two clocks differ only by time spent suspended. The
# clock is therefore recognised from the first timestamp rather than assumed.

_CLOCKS = (
    ("monotonic", time.CLOCK_MONOTONIC),
    ("boottime", time.CLOCK_BOOTTIME),
    ("realtime", time.CLOCK_REALTIME),
)
# How far from "now" a first timestamp may be and still be taken as being on a clock:
# queued frames are at most a second or so old, and nothing is from the future.
_RECENT_NS = 10_000_000_000
_AHEAD_NS = 1_000_000_000


def wall_offset_ns(clock_id: int) -> int:
    """UTC wall clock minus ``clock_id`` (ns), from the tightest of a few paired reads."""
    best_gap, best_offset = None, 0
    for _ in range(5):
        before = time.clock_gettime_ns(clock_id)
        wall = time.time_ns()
        after = time.clock_gettime_ns(clock_id)
        if best_gap is None or after - before < best_gap:
            best_gap, best_offset = after - before, wall - (before + after) // 2
    return best_offset


def classify_timestamp(ts_ns: int, now_ns: dict[str, int]) -> str | None:
    """The clock (monotonic, boottime, realtime) on which ``ts_ns`` is a recent instant."""
    for name, _ in _CLOCKS:
        now = now_ns.get(name)
        if now is not None and now - _RECENT_NS <= ts_ns <= now + _AHEAD_NS:
            return name
    return None


class FrameClock:
    """Turns a device's frame timestamps into UTC ns.

    The first timestamp decides the clock; the offset to the wall clock is measured
    then and again at ``anchor()`` (the recorder's start), and held in between so a
    recording's timeline has no jumps when chrony steps the wall clock. Timestamps on
    no known clock (or none at all) fall back to the arrival time, with one warning.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.kind: str | None = None
        self._offset_ns = 0

    def reset(self) -> None:
        """Forget the clock; the next timestamp decides again."""
        self.kind = None

    def anchor(self) -> None:
        """Measure the offset to the wall clock again (a step since open is taken in)."""
        for name, clock_id in _CLOCKS:
            if name == self.kind:
                self._offset_ns = wall_offset_ns(clock_id)

    def to_wall_ns(self, ts_ns: int | None, arrival_wall_ns: int) -> int:
        """The UTC instant of a frame stamped ``ts_ns`` that reached us at ``arrival_wall_ns``."""
        if self.kind is None:
            self._decide(ts_ns)
        if self.kind == "arrival" or ts_ns is None:
            return arrival_wall_ns
        return ts_ns + self._offset_ns

    def _decide(self, ts_ns: int | None) -> None:
        kind = None
        if ts_ns is not None:
            kind = classify_timestamp(
                ts_ns, {name: time.clock_gettime_ns(cid) for name, cid in _CLOCKS}
            )
        if kind is None:
            log.warning(
                "%s: frame timestamps (%s) are on no clock this host knows; frames are "
                "stamped when they arrive, which adds the transfer and decode delay",
                self.source,
                ts_ns,
            )
            self.kind = "arrival"
            return
        self.kind = kind
        self.anchor()
        log.info("%s: frame timestamps are on CLOCK_%s", self.source, kind.upper())


# --- Choosing a camera --------------------------------------------------------------


@dataclass(frozen=True)
class CameraSurvey:
    """What this node has, found without opening a camera: what ``auto`` acts on."""

    csi_cameras: list[str] = field(default_factory=list)
    picamera2_problem: str | None = None
    v4l2_devices: list[V4l2Device] = field(default_factory=list)
    v4l2_problem: str | None = None
    device: str | None = None

    @property
    def choice(self) -> str | None:
        """'v4l2' when camera.device is set, else 'picamera2' before 'v4l2'; None if neither."""
        if self.device is not None:
            return "v4l2"
        if self.csi_cameras:
            return "picamera2"
        if self.v4l2_devices:
            return "v4l2"
        return None

    def findings(self) -> str:
        """What was tried and found, e.g. 'picamera2 is not installed; no /dev/video* devices'."""
        csi = (
            f"picamera2: {', '.join(self.csi_cameras)}"
            if self.csi_cameras
            else (self.picamera2_problem or "picamera2: no camera")
        )
        if self.v4l2_devices:
            usb = "V4L2: " + ", ".join(d.describe() for d in self.v4l2_devices)
        else:
            usb = self.v4l2_problem or "V4L2: no capture device"
        return f"{csi}; {usb}"

    def summary(self) -> str:
        """One line for the status page: what ``auto`` picks, or why there is nothing."""
        choice = self.choice
        if choice == "v4l2" and self.device is not None:
            if self.v4l2_problem:
                return f"camera.device {self.device}: {self.v4l2_problem}"
            return f"V4L2 {self.v4l2_devices[0].describe()} (camera.device)"
        if choice == "picamera2":
            return f"picamera2 {self.csi_cameras[0]}"
        if choice == "v4l2":
            return f"V4L2 {self.v4l2_devices[0].describe()}"
        return f"no camera found: {self.findings()}"


def probe_picamera2() -> tuple[list[str], str | None]:
    """CSI cameras libcamera lists (USB ones are left to V4L2), or why there are none.

    Importing picamera2 and listing cameras starts libcamera's camera manager but
    opens no camera.
    """
    try:
        from picamera2 import Picamera2
    except ModuleNotFoundError as err:
        if err.name == "picamera2":
            return [], (
                "picamera2 is not installed (apt install python3-picamera2; the venv "
                "needs --system-site-packages)"
            )
        return [], f"picamera2 cannot be imported: {err}"
    except Exception as err:  # libcamera's bindings raise whatever they raise
        return [], f"picamera2 cannot be imported: {err}"
    try:
        infos = Picamera2.global_camera_info()
    except Exception as err:
        return [], f"libcamera could not list cameras: {err}"
    csi = [info for info in infos if "/usb" not in str(info.get("Id", ""))]
    if not csi:
        extra = f" ({len(infos)} USB camera(s) left to V4L2)" if infos else ""
        return [], f"libcamera sees no CSI camera{extra}"
    return [f"{info.get('Model', '?')} ({info.get('Id', '?')})" for info in csi], None


def survey_cameras(device: str | None = None, dev_dir: Path = Path("/dev")) -> CameraSurvey:
    """Probe picamera2 and the V4L2 devices (or just ``device`` when it is set)."""
    from node_agent.recorder.backends.v4l2 import find_capture_devices, inspect_device

    if device is not None:
        found, problem = inspect_device(device, dev_dir)
        return CameraSurvey(
            v4l2_devices=[found] if found else [], v4l2_problem=problem, device=device
        )
    csi, csi_problem = probe_picamera2()
    devices, v4l2_problem = find_capture_devices(dev_dir)
    return CameraSurvey(csi, csi_problem, devices, v4l2_problem)


def describe_cameras(
    source: str = "auto", device: str | None = None, dev_dir: Path = Path("/dev")
) -> str:
    """What camera.source would record from, for the status page; opens no camera."""
    if source == "synthetic":
        return "synthetic test pattern (camera.source: synthetic)"
    if source == "picamera2":
        csi, problem = probe_picamera2()
        return f"picamera2 {csi[0]}" if csi else f"picamera2: {problem}"
    if source == "v4l2":
        if device is None:
            from node_agent.recorder.backends.v4l2 import find_capture_devices

            devices, problem = find_capture_devices(dev_dir)
            return f"V4L2 {devices[0].describe()}" if devices else str(problem)
        return survey_cameras(device, dev_dir).summary()
    if source == "auto":
        return "auto: " + survey_cameras(device, dev_dir).summary()
    return f"unknown camera source {source!r}"


def wait_settled(opened_monotonic_ns: int, settle_s: float) -> None:
    """Sleep until ``settle_s`` after the camera opened: auto-exposure and white balance
    need about that long, and a still taken sooner is dark or tinted. The camera keeps
    streaming meanwhile, so the still that follows is of the settled picture."""
    remaining = opened_monotonic_ns + settle_s * 1e9 - time.monotonic_ns()
    if remaining > 0:
        time.sleep(remaining / 1e9)


def make_backend(
    source: str,
    width: int,
    height: int,
    fps: float,
    camera_id: str = "",
    *,
    device: str | None = None,
) -> CameraBackend:
    """The backend ``camera.source`` names, constructed but not opened (``open()`` acquires).

    ``auto`` takes camera.device when it is set, else the first CSI camera picamera2
    sees, else the first V4L2 capture device; with none it raises CameraError saying
    what was tried and found.
    """
    if source == "synthetic":
        from node_agent.recorder.backends.synthetic import SyntheticCamera

        return SyntheticCamera(width, height, fps, camera_id)
    if source == "picamera2":
        from node_agent.recorder.backends.picamera2 import Picamera2Camera

        return Picamera2Camera(width, height, fps)
    if source == "v4l2":
        from node_agent.recorder.backends.v4l2 import V4l2Camera, find_capture_devices

        if device is None:
            devices, problem = find_capture_devices()
            if not devices:
                raise CameraError(f"camera.source is v4l2 but {problem}")
            device = str(devices[0].path)
        return V4l2Camera(device, width, height, fps)
    if source == "auto":
        survey = survey_cameras(device)
        choice = survey.choice
        if choice == "picamera2":
            log.info("camera.source auto: %s", survey.summary())
            return make_backend("picamera2", width, height, fps, camera_id)
        if choice == "v4l2":
            log.info("camera.source auto: %s", survey.summary())
            chosen = device if device is not None else str(survey.v4l2_devices[0].path)
            return make_backend("v4l2", width, height, fps, camera_id, device=chosen)
        raise CameraError(f"no camera found: {survey.findings()}")
    raise CameraError(f"unknown camera source {source!r}; choose one of: {', '.join(SOURCES)}")
