"""USB webcams through FFmpeg's V4L2 input (PyAV), as yuv420p frames at the requested size.

FFmpeg reads a V4L2 device with a blocking VIDIOC_DQBUF (its non-blocking mode,
AVFMT_FLAG_NONBLOCK, is not settable through open options, so PyAV cannot ask for
it). The container therefore lives on one worker thread from open to close, which
keeps taking frames off the device; ``read`` waits for them with a deadline, so a
camera that stops delivering costs ``timeout_s`` and a CameraError. An unplugged
camera makes the blocked dequeue fail (uvcvideo wakes it with ENODEV/EIO), which
becomes CameraError as well. A camera that stalls without failing leaves the worker
blocked in the driver (see CameraWorker).

Timestamps: FFmpeg's ``timestamps=default`` passes the kernel's buffer timestamp
through as the packet pts, in microseconds (time base 1/1000000). uvcvideo stamps on
CLOCK_MONOTONIC, so the pts is *not* wall-clock time; ``abs``/``mono2abs`` would
convert it with a smoothing filter of FFmpeg's own. The backend keeps the kernel's
stamp and converts it with a measured offset (``FrameClock``), the same way as the
picamera2 backend, and stamps on arrival only when the pts is on no known clock.
"""

from __future__ import annotations

import errno
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import av
import av.container

from node_agent.camera.discovery import describe_path, inspect_device, resolve_device
from node_agent.camera.frameclock import FrameClock
from node_agent.camera.protocol import CameraError, CapturedFrame, wait_settled
from node_agent.camera.v4l2_frames import (
    OpenFailed,
    copy_frame,
    error_number,
    error_text,
    open_error,
    to_yuv420p,
)
from node_agent.camera.worker import CameraWorker

# Auto-exposure after the device opens: stills taken sooner come out dark.
SETTLE_S = 0.5

log = logging.getLogger(__name__)

# Raw 4:2:2 needs 2 bytes a pixel; a USB 2.0 camera carries about 20-24 MB/s of it, so
# above that budget MJPEG is asked for first (see docs/hardware.md, USB bandwidth).
_RAW_BUDGET_BYTES_S = 20_000_000


@dataclass(frozen=True)
class _Packet:
    """One frame as the device delivered it (not decoded yet)."""

    packet: av.Packet[av.VideoStream]
    ts_ns: int | None  # the kernel's timestamp, ns; None when the packet has none
    arrival_ns: int


class V4l2Camera:
    """A USB webcam (or any V4L2 capture node) through PyAV's ``v4l2`` input.

    While open, a worker thread (``CameraWorker``) keeps dequeuing the device's frames
    into a short ring, undecoded, as the camera produces them; ``read`` takes the
    oldest and decodes it, ``still`` decodes the newest. The kernel's queue therefore
    never fills while nobody reads (between arming and the start, between timelapse
    stills): no stale backlog, and the frame at the start instant is not lost for want
    of a buffer. A reader that falls behind loses the oldest frames (``dropped_frames``).
    """

    name = "v4l2"

    def __init__(
        self,
        device: str,
        width: int,
        height: int,
        fps: float = 30.0,
        *,
        input_format: str | None = None,
        open_timeout_s: float = 10.0,
        close_timeout_s: float = 5.0,
        still_timeout_s: float = 5.0,
        av_format: str = "v4l2",
        dev_dir: Path = Path("/dev"),
    ) -> None:
        """``input_format`` is FFmpeg's (``mjpeg``, ``yuyv422``...); None chooses by USB
        bandwidth. ``av_format`` is the FFmpeg input; anything but ``v4l2`` is for tests,
        which read a recorded stream through the same code."""
        self.device = device
        self.width = width
        self.height = height
        self.fps = fps
        self.input_format = input_format
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.still_timeout_s = still_timeout_s
        self.av_format = av_format
        self.dropped_frames = 0
        self._opened_ns = 0
        self._dev_dir = dev_dir
        self._path = resolve_device(device, dev_dir)
        self._ring_size = max(3, min(15, math.ceil(fps / 2)))  # about half a second
        self._worker: CameraWorker | None = None
        self._stuck: CameraWorker | None = None
        # The worker's alone: the container, from open to close.
        self._container: av.container.InputContainer | None = None
        self._stream: av.VideoStream | None = None
        # Shared with the worker, under _cond: the ring, packets borrowed by readers
        # (the container is not closed while any is out), the pump's failure.
        self._cond = threading.Condition()
        self._ring: deque[_Packet] = deque()
        self._borrowed = 0
        self._failure: str | None = None
        self._stop_pump = threading.Event()
        # The readers' side.
        self._decode = threading.Lock()  # one codec context: one decode at a time
        self._state = threading.Lock()
        self._clock = FrameClock(f"v4l2 {device}")
        self._last_ns: int | None = None
        self._skip_before_ns = 0
        self._latest: tuple[int, av.VideoFrame] | None = None
        self._problem = ""  # the last undecodable frame, for the time-out message

    @property
    def where(self) -> str:
        """The device for messages, symlinks resolved."""
        return describe_path(self._path)

    def open(self) -> None:
        """Open the device at the requested size and rate and start taking its frames;
        raises CameraError."""
        if self._worker is not None:
            return
        if self._stuck is not None and self._stuck.is_alive():
            raise CameraError(
                f"an earlier call on {self.where} is still stuck in the driver; restart the "
                "agent (or replug the camera) to use it again"
            )
        if self.av_format == "v4l2":
            found, problem = inspect_device(str(self._path), self._dev_dir)
            if found is None:
                raise CameraError(f"cannot use the V4L2 camera: {problem}")
        self._clock.reset()
        self._last_ns, self._latest, self._skip_before_ns, self._problem = None, None, 0, ""
        with self._cond:
            self._ring.clear()
            self._failure = None
        self._stop_pump.clear()
        worker = CameraWorker(f"camfleet v4l2 {self.device}")
        # Up to three av.open calls (two input formats, then the better of them again),
        # each bounded by open_timeout_s while it waits for the first frames.
        try:
            worker.call(
                self._open_on_worker, 3 * self.open_timeout_s, f"opening the camera {self.where}"
            )
        except CameraError:
            worker.submit(self._close_on_worker)  # runs if the stuck open ever returns
            worker.stop()
            self._stuck = worker
            raise
        worker.submit(self._pump)
        self._worker = worker
        self._opened_ns = time.monotonic_ns()

    def _open_on_worker(self) -> None:
        errors: list[str] = []
        slow: tuple[float, str | None] | None = None  # best format that opened but was slow
        for fmt in self._input_formats():
            try:
                container = self._open_container(fmt)
            except OpenFailed as err:
                errors.append(str(err))
                if err.fatal:
                    break
                continue
            rate = self._rate(container)
            if rate is None or rate >= 0.9 * self.fps:
                self._adopt(container, fmt, rate)
                return
            log.info(
                "%s delivers %.3g fps as %s, %g asked", self.where, rate, fmt or "raw", self.fps
            )
            container.close()
            if slow is None or rate > slow[0]:
                slow = (rate, fmt)
        if slow is not None:
            log.warning(
                "%s: %g fps asked, the camera delivers %.3g fps at %dx%d",
                self.where,
                self.fps,
                slow[0],
                self.width,
                self.height,
            )
            self._adopt(self._open_container(slow[1]), slow[1], slow[0])
            return
        raise CameraError(
            f"cannot open the V4L2 camera {self.where} at {self.width}x{self.height} "
            f"{self.fps:g} fps: {'; '.join(errors)}"
        )

    def _input_formats(self) -> list[str | None]:
        if self.input_format is not None:
            return [self.input_format]
        if self.width * self.height * 2 * self.fps > _RAW_BUDGET_BYTES_S:
            return ["mjpeg", None]
        return [None, "mjpeg"]

    def _open_container(self, fmt: str | None) -> av.container.InputContainer:
        options = {
            "video_size": f"{self.width}x{self.height}",
            "framerate": f"{self.fps:g}",
            "timestamps": "default",  # the kernel's stamps, converted by FrameClock
        }
        if fmt is not None:
            options["input_format"] = fmt
        try:
            return av.open(
                str(self._path),
                format=self.av_format,
                container_options=options,
                timeout=(self.open_timeout_s, None),
            )
        except (av.FFmpegError, OSError) as err:
            raise open_error(self.where, fmt, err) from err

    @staticmethod
    def _rate(container: av.container.InputContainer) -> float | None:
        rate = container.streams.video[0].average_rate if container.streams.video else None
        return float(rate) if rate else None

    def _adopt(
        self, container: av.container.InputContainer, fmt: str | None, rate: float | None
    ) -> None:
        if not container.streams.video:
            container.close()
            raise CameraError(f"{self.where} has no video stream")
        self._container, self._stream = container, container.streams.video[0]
        ctx = self._stream.codec_context
        log.info(
            "%s open: %s %dx%d %s at %s fps (asked %dx%d %g fps)",
            self.where,
            ctx.name,
            ctx.width,
            ctx.height,
            ctx.pix_fmt or fmt or "",
            f"{rate:.3g}" if rate else "?",
            self.width,
            self.height,
            self.fps,
        )

    def _pump(self) -> None:
        """On the worker: dequeue frames into the ring until stopped or the device fails."""
        container, stream = self._container, self._stream
        if container is None or stream is None:
            return
        failure = None
        packets = container.demux(stream)
        try:
            while not self._stop_pump.is_set():
                packet = next(packets, None)
                if packet is None or packet.size == 0:  # none, or PyAV's flush packet: EOF
                    failure = f"the V4L2 camera {self.where} stopped (end of stream)"
                    break
                arrival_ns = time.time_ns()
                pts, tb = packet.pts, packet.time_base
                ts_ns = None if pts is None or tb is None else int(pts * tb * 1_000_000_000)
                with self._cond:
                    if self._stop_pump.is_set():
                        break
                    if len(self._ring) >= self._ring_size:
                        self._ring.popleft()
                        self.dropped_frames += 1
                    self._ring.append(_Packet(packet, ts_ns, arrival_ns))
                    self._cond.notify_all()
        except (av.FFmpegError, OSError) as err:
            gone = " (unplugged?)" if error_number(err) in (errno.ENODEV, errno.EIO) else ""
            failure = f"the V4L2 camera {self.where} failed: {error_text(err)}{gone}"
        finally:
            close = getattr(packets, "close", None)  # a generator: frees its read packet
            if close is not None:
                close()
            with self._cond:
                if failure is not None:
                    self._failure = failure
                    log.warning("%s", failure)
                self._cond.notify_all()

    def begin(self, start_wall_ns: int, start_monotonic_ns: int) -> None:
        """The camera streams on its own: the clock offset is measured again, and frames
        from before the start are skipped without being decoded."""
        with self._state:
            self._clock.anchor()
            self._skip_before_ns = start_wall_ns

    def read(self, timeout_s: float, cancel: threading.Event) -> CapturedFrame | None:
        """The next frame, in order; None once ``cancel`` is set; CameraError after
        ``timeout_s`` without one, or when the device failed (unplugged: ENODEV/EIO)
        and the frames it delivered before are used up."""
        deadline = time.monotonic() + timeout_s
        while True:
            item = self._borrow(deadline, timeout_s, cancel, newest=False)
            if item is None:
                return None
            try:
                captured = self._convert(item)
            finally:
                item = None  # the packet (and the driver buffer it may hold) goes back
                self._give_back()
            if captured is not None:
                self._latest = (time.monotonic_ns(), captured.frame)
                return captured

    def _borrow(
        self, deadline: float, timeout_s: float, cancel: threading.Event, *, newest: bool
    ) -> _Packet | None:
        """The oldest (or newest, left in place) frame of the ring, once there is one."""
        with self._cond:
            while True:
                if cancel.is_set():
                    return None
                if self._worker is None:
                    raise CameraError(f"the V4L2 camera {self.where} is not open")
                if self._ring:
                    self._borrowed += 1
                    return self._ring[-1] if newest else self._ring.popleft()
                if self._failure is not None:
                    raise CameraError(self._failure)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    problem = f" (last: {self._problem})" if self._problem else ""
                    raise CameraError(
                        f"no frame from the V4L2 camera {self.where} for {timeout_s:g} s"
                        f"{problem}; is it unplugged, or short of USB bandwidth? (`dmesg | tail`)"
                    )
                self._cond.wait(min(remaining, 0.05))

    def _give_back(self) -> None:
        with self._cond:
            self._borrowed -= 1
            self._cond.notify_all()

    def _convert(self, item: _Packet) -> CapturedFrame | None:
        """The frame with its UTC capture time; None to skip it (early, out of order,
        or undecodable)."""
        with self._state:
            capture_ns = self._clock.to_wall_ns(item.ts_ns, item.arrival_ns)
            if capture_ns < self._skip_before_ns:
                return None  # from before the recording's start: not worth decoding
            if self._last_ns is not None and capture_ns <= self._last_ns:
                return None  # a repeated or out-of-order stamp: frames go out in order only
            self._last_ns = capture_ns
        frame = self._decode_one(item)
        return None if frame is None else CapturedFrame(frame, capture_ns)

    def _decode_one(self, item: _Packet) -> av.VideoFrame | None:
        try:
            with self._decode:
                frames = item.packet.decode()
        except av.FFmpegError as err:
            # A USB hiccup corrupts an MJPEG frame now and then; the next one is fine.
            self._problem = f"undecodable frame: {error_text(err)}"
            return None
        # MJPEG and raw video: one frame a packet.
        return to_yuv420p(frames[0], self.width, self.height) if frames else None

    def still(self) -> av.VideoFrame:
        """A copy of the latest frame when one was read lately (a running recording's),
        else the newest frame the camera delivered, left for ``read``."""
        latest = self._latest
        fresh_ns = int(max(0.5, 3 / self.fps) * 1e9)
        if latest is not None and time.monotonic_ns() - latest[0] <= fresh_ns:
            return copy_frame(latest[1])
        wait_settled(self._opened_ns, SETTLE_S)
        deadline = time.monotonic() + self.still_timeout_s
        while True:
            item = self._borrow(deadline, self.still_timeout_s, threading.Event(), newest=True)
            assert item is not None  # nobody can set a fresh Event
            try:
                frame = self._decode_one(item)
            finally:
                item = None
                self._give_back()
            if frame is not None:
                return frame
            time.sleep(0.5 / self.fps)  # undecodable: wait for the next one

    def close(self) -> None:
        """Stop streaming and release the device; safe to call twice.

        Frames handed out stay valid (they are copies). A pump stuck in the driver
        holds the worker: the close then waits for it at most close_timeout_s, and the
        device stays open until the driver lets go.
        """
        with self._cond:
            worker, self._worker = self._worker, None
            if worker is None:
                return
            self._stop_pump.set()
            self._ring.clear()
            deadline = time.monotonic() + self.close_timeout_s
            while self._borrowed and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            self._cond.notify_all()
        try:
            worker.call(self._close_on_worker, self.close_timeout_s, f"closing {self.where}")
        except CameraError as err:
            self._stuck = worker
            log.error("%s; the device stays open until the driver returns", err)
        finally:
            worker.stop()

    def _close_on_worker(self) -> None:
        with self._cond:
            self._ring.clear()
            if self._borrowed:
                # A reader still holds a packet that may point into a driver buffer:
                # closing would unmap it under the reader. Leave the device open.
                raise CameraError(f"a frame of {self.where} is still being decoded")
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            container.close()
