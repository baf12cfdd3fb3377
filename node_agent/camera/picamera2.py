"""The Raspberry Pi CSI camera through picamera2 (libcamera).

picamera2 is imported when the camera is opened, never at import time, so the agent
runs on machines without it. Every picamera2/libcamera failure becomes CameraError.

Frames: a video configuration with a YUV420 main stream at the requested size, the
frame duration pinned to 1/fps. ``read`` takes the next completed request, copies
its "main" array, notes its SensorTimestamp and releases it at once, so libcamera
gets its buffer back while the frame is being encoded. picamera2 keeps at most one
finished request (``queue=True``), so a reader that falls behind loses frames rather
than receiving stale ones; the frames it gets are always in order. When the live view
asked (``configure_lores``), the configuration has a second, small YUV420 ``lores``
stream too: the ISP scales it, ``read`` copies it out of the same request, and
``latest_lores`` hands the live view the newest one.

Timestamps: SensorTimestamp is the instant the first row is read out, from the
kernel driver's CLOCK_MONOTONIC stamp (see ``FrameClock``); the frame's exposure
ended then and began ExposureTime µs earlier.

Hangs: a capture is queued as a picamera2 job and waited for with a deadline, so a
camera that stops delivering (ribbon cable, power, driver fault) costs ``timeout_s``
and a CameraError, never a stuck recorder; the job is then cancelled with
``cancel_all_and_flush``, picamera2's remedy for a timed-out operation. Opening and
closing call into libcamera directly and can block in the kernel; they run on a
``CameraWorker`` with a deadline. A call that does not return cannot be killed from
Python: its thread stays blocked (as a daemon it does not keep the agent from
exiting), the camera stays held by this process, and this backend refuses to open
again while that call is stuck; restarting the agent frees it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as JobTimeout
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from node_agent.camera.frameclock import FrameClock
from node_agent.camera.picamera2_sync import await_sync, sync_controls
from node_agent.camera.protocol import CameraError, CapturedFrame, wait_settled
from node_agent.camera.worker import CameraWorker, result_within
from node_agent.schemas import FrameSyncReport

log = logging.getLogger(__name__)

# Auto-exposure and white balance after the camera starts: stills taken sooner come
# out dark or tinted (about a second on the Pi's sensors).
SETTLE_S = 1.0

_CABLE_HINT = (
    "check the ribbon cable and camera_auto_detect=1 in /boot/firmware/config.txt; "
    "`rpicam-hello --list-cameras` lists what libcamera sees"
)


def _reason(err: BaseException) -> str:
    """The message of ``err`` and of what caused it (picamera2 wraps libcamera's errors)."""
    parts: list[str] = []
    seen: BaseException | None = err
    while seen is not None and len(parts) < 4:
        text = str(seen) or type(seen).__name__
        if text not in parts:
            parts.append(text.rstrip("."))
        seen = seen.__cause__ or seen.__context__
    return ": ".join(parts)


def yuv420_array_to_frame(array: npt.NDArray[np.uint8], width: int, height: int) -> av.VideoFrame:
    """picamera2's YUV420 array as a yuv420p frame of ``width`` x ``height``.

    picamera2 returns YUV420 as ``height * 3 / 2`` rows of ``stride`` bytes, padding
    kept: the Y plane, then the U and V planes (each ``height / 2`` rows of
    ``stride / 2`` bytes), packed two chroma rows to an array row.
    """
    rows, stride = array.shape
    if rows != height * 3 // 2 or stride < width or width % 2 or height % 2:
        raise CameraError(
            f"the camera delivered a {stride}x{rows} YUV420 buffer for a {width}x{height} frame"
        )
    if stride == width:
        return av.VideoFrame.from_ndarray(array, format="yuv420p")
    flat = array.reshape(-1)
    cw, ch, cstride = width // 2, height // 2, stride // 2
    u_at = height * stride
    v_at = u_at + ch * cstride
    out = np.empty((height * 3 // 2, width), dtype=np.uint8)
    out[:height] = array[:height, :width]
    chroma = out[height:].reshape(-1)
    chroma[: ch * cw] = flat[u_at:v_at].reshape(ch, cstride)[:, :cw].reshape(-1)
    chroma[ch * cw :] = flat[v_at : v_at + ch * cstride].reshape(ch, cstride)[:, :cw].reshape(-1)
    return av.VideoFrame.from_ndarray(out, format="yuv420p")


class _Pending:
    """One capture job, and who releases its request if the reader gave up on it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.finished = False
        self.abandoned = False

    def on_finished(self, job: Any) -> None:
        """picamera2's signal_function: runs on its event loop when the job is done."""
        with self.lock:
            self.finished = True
            abandoned = self.abandoned
        if abandoned:
            _release_result(job)

    def abandon(self, job: Any) -> None:
        """The reader will not take this request: release it now or when it arrives."""
        with self.lock:
            self.abandoned = True
            finished = self.finished
        if finished:
            _release_result(job)


def _release_result(job: Any) -> None:
    try:
        job.get_result(timeout=0).release()
    except Exception as err:  # cancelled or failed: nothing was taken
        log.debug("capture job left no request to release: %s", _reason(err))


def _close_quietly(cam: Any) -> None:
    """Stop and close a Picamera2, logging what fails; each step is tried."""
    for step in ("stop", "close"):
        try:
            getattr(cam, step)()
        except Exception as err:
            log.warning("picamera2 %s failed: %s", step, _reason(err))


class Picamera2Camera:
    """The Pi's CSI camera, streaming from ``open()`` to ``close()``."""

    name = "picamera2"

    def __init__(
        self,
        width: int,
        height: int,
        fps: float = 30.0,
        *,
        camera_num: int | None = None,
        open_timeout_s: float = 20.0,
        close_timeout_s: float = 10.0,
        still_timeout_s: float = 5.0,
    ) -> None:
        """``camera_num`` indexes ``Picamera2.global_camera_info()``; None is the first
        CSI camera (libcamera also lists USB cameras, which are left to V4L2)."""
        self.width = width
        self.height = height
        self.fps = fps
        self.camera_num = camera_num
        self.open_timeout_s = open_timeout_s
        self.close_timeout_s = close_timeout_s
        self.still_timeout_s = still_timeout_s
        self.model = "?"
        self._cam: Any = None
        self._worker: CameraWorker | None = None
        self._stuck: CameraWorker | None = None
        self._size = (width, height)
        self._clock = FrameClock("picamera2")
        self._opened_ns = 0
        self._state = threading.Lock()
        self._last_ts: int | None = None
        self._latest: tuple[int, av.VideoFrame] | None = None
        self._rate_checked = False
        self._sync_mode = "off"
        self._sync_frames: int | None = None
        self._sync_error: str | None = None
        self._lores_want: tuple[int, int] | None = None
        self._lores_size: tuple[int, int] | None = None
        self._lores_latest: tuple[int, npt.NDArray[np.uint8]] | None = None

    def configure_lores(self, width: int, height: int) -> None:
        """Also stream a YUV420 ``lores`` of ``width`` x ``height`` from the next ``open()``
        (the live view); a size over the main stream's is not asked for."""
        if width <= self.width and height <= self.height:
            self._lores_want = (width, height)

    def latest_lores(self) -> av.VideoFrame | None:
        """The lores frame of the latest request read lately, as a frame of its own."""
        with self._state:
            latest, size = self._lores_latest, self._lores_size
        fresh_ns = int(max(0.5, 3 / self.fps) * 1e9)
        if latest is None or size is None or time.monotonic_ns() - latest[0] > fresh_ns:
            return None
        return yuv420_array_to_frame(latest[1], *size)

    def open(self) -> None:
        """Acquire the camera, configure it and start streaming; raises CameraError."""
        if self._cam is not None:
            return
        if self._stuck is not None and self._stuck.is_alive():
            raise CameraError(
                "an earlier call into libcamera is still stuck, and the camera is held by "
                "this process; restart the agent (or power-cycle the Pi) to use it again"
            )
        self._clock.reset()
        self._last_ts, self._latest, self._rate_checked = None, None, False
        self._lores_latest = None
        worker = CameraWorker("camfleet picamera2")
        started = worker.submit(self._start)
        try:
            self._cam = _result(started, self.open_timeout_s, "starting the Pi camera")
        except CameraError:
            # If the start ever finishes, nobody wants the camera it opened.
            started.add_done_callback(_close_when_started)
            worker.stop()
            self._stuck = worker
            raise
        self._worker = worker
        self._opened_ns = time.monotonic_ns()

    def _start(self) -> Any:
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise CameraError(
                f"picamera2 cannot be imported ({err}); on Raspberry Pi OS: apt install "
                "python3-picamera2, and create the venv with --system-site-packages"
            ) from err
        try:
            infos = Picamera2.global_camera_info()
        except Exception as err:
            raise CameraError(f"libcamera could not list cameras: {_reason(err)}") from err
        num = self._pick(infos)
        self.model = str(infos[num].get("Model", "?"))
        try:
            cam = Picamera2(num)
        except Exception as err:
            raise CameraError(f"cannot open the Pi camera {self.model}: {_reason(err)}") from err
        try:
            period_us = round(1_000_000 / self.fps)
            controls: dict[str, Any] = {"FrameDurationLimits": (period_us, period_us)}
            self._sync_error = None
            if self._sync_mode != "off":
                try:
                    controls |= sync_controls(cam, self._sync_mode, self._sync_frames)
                except CameraError as err:  # the recording goes on, unsynchronised, and says so
                    self._sync_error = str(err)
                    log.warning("Pi camera %s: frame sync: %s", self.model, err)
            streams: dict[str, Any] = {
                "main": {"size": (self.width, self.height), "format": "YUV420"}
            }
            if self._lores_want is not None:  # the live view's small stream
                streams["lores"] = {"size": self._lores_want, "format": "YUV420"}
            config = cam.create_video_configuration(**streams, controls=controls)
            cam.configure(config)
            main = cam.camera_config["main"]
            lores = cam.camera_config.get("lores")
            cam.start()
        except Exception as err:
            _close_quietly(cam)
            raise CameraError(
                f"cannot start the Pi camera {self.model} at {self.width}x{self.height} "
                f"{self.fps:g} fps: {_reason(err)}"
            ) from err
        self._size = (int(main["size"][0]), int(main["size"][1]))
        self._lores_size = (int(lores["size"][0]), int(lores["size"][1])) if lores else None
        if self._size != (self.width, self.height):
            log.warning(
                "libcamera gives %dx%d for the %dx%d asked; frames are scaled",
                *self._size,
                self.width,
                self.height,
            )
        log.info("Pi camera %s streaming %dx%d at %g fps", self.model, *self._size, self.fps)
        return cam

    def _pick(self, infos: list[dict[str, Any]]) -> int:
        if self.camera_num is not None:
            if not 0 <= self.camera_num < len(infos):
                raise CameraError(
                    f"camera number {self.camera_num} asked, libcamera sees {len(infos)} camera(s)"
                )
            return self.camera_num
        for num, info in enumerate(infos):
            if "/usb" not in str(info.get("Id", "")):
                return num
        usb = f" (only {len(infos)} USB camera(s), recorded through V4L2)" if infos else ""
        raise CameraError(f"libcamera sees no CSI camera{usb}: {_CABLE_HINT}")

    def begin(self, start_wall_ns: int, start_monotonic_ns: int) -> None:
        """The camera streams on its own; only the clock offset is measured again."""
        self._clock.anchor()

    def configure_frame_sync(self, mode: str, ready_frames: int | None) -> None:
        """Run libcamera's software camera sync as ``mode`` (server or client) from the
        next ``open()``; the server declares readiness after ``ready_frames`` frames."""
        self._sync_mode, self._sync_frames = mode, ready_frames

    def await_frame_sync(self, until_wall_ns: int, cancel: threading.Event) -> FrameSyncReport:
        """Wait for SyncReady until ``until_wall_ns``; the report says how it went."""
        if self._sync_error is not None or self._cam is None:
            error = self._sync_error or "the Pi camera is not open"
            return FrameSyncReport(mode=self._sync_mode, ready=False, error=error)
        return await_sync(
            self._cam, self._worker, self._sync_mode, until_wall_ns, cancel, _Pending()
        )

    def read(self, timeout_s: float, cancel: threading.Event) -> CapturedFrame | None:
        """The next frame, in order; None once ``cancel`` is set; CameraError when
        none came within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            request = self._next_request(deadline, timeout_s, cancel)
            if request is None:
                return None
            captured = self._take(request)
            if captured is not None:
                with self._state:
                    self._latest = (time.monotonic_ns(), captured.frame)
                return captured

    def _next_request(self, deadline: float, timeout_s: float, cancel: threading.Event) -> Any:
        cam = self._cam
        if cam is None:
            raise CameraError("the Pi camera is not open")
        # picamera2's jobs are concurrent.futures underneath: these are its
        # picamera2.TimeoutError and picamera2.CancelledError.
        pending = _Pending()
        try:
            job = cam.capture_request(wait=False, signal_function=pending.on_finished)
        except Exception as err:
            raise CameraError(f"picamera2 could not queue a capture: {_reason(err)}") from err
        while True:
            if cancel.is_set():
                pending.abandon(job)  # the request it gets (next frame) is released
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pending.abandon(job)
                # picamera2's remedy for a timed-out operation, so that close() works.
                if self._worker is not None:
                    try:
                        self._worker.call(cam.cancel_all_and_flush, 1.0, "flushing picamera2")
                    except CameraError as err:
                        log.warning("%s", err)
                raise CameraError(
                    f"no frame from the Pi camera {self.model} for {timeout_s:g} s; libcamera "
                    "stopped delivering (ribbon cable, power or a driver fault; `dmesg`)"
                )
            try:
                return job.get_result(timeout=min(remaining, 0.05))
            except JobTimeout:
                continue
            except CancelledError as err:
                raise CameraError("the capture was cancelled (the camera is closing)") from err
            except Exception as err:
                raise CameraError(f"picamera2 capture failed: {_reason(err)}") from err

    def _take(self, request: Any) -> CapturedFrame | None:
        """Copy the frame out of ``request`` and give the buffer back to libcamera."""
        arrival_ns = time.time_ns()
        try:
            array = request.make_array("main")
            small = request.make_array("lores") if self._lores_size is not None else None
            metadata = request.get_metadata()
        except Exception as err:
            raise CameraError(f"picamera2 gave an unreadable frame: {_reason(err)}") from err
        finally:
            request.release()
        ts = metadata.get("SensorTimestamp")
        ts_ns = int(ts) if isinstance(ts, int) else None
        with self._state:
            if ts_ns is not None and self._last_ts is not None and ts_ns <= self._last_ts:
                return None  # not newer than the last frame: only ever hand frames out in order
            self._last_ts = ts_ns
            capture_ns = self._clock.to_wall_ns(ts_ns, arrival_ns)
            sensor = ts_ns is not None and self._clock.kind not in (None, "arrival")
            self._check_rate(metadata)
            if small is not None:
                self._lores_latest = (time.monotonic_ns(), small)
        frame = yuv420_array_to_frame(array, *self._size)
        if self._size != (self.width, self.height):
            frame = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        return CapturedFrame(frame, capture_ns, "sensor" if sensor else "capture")

    def _check_rate(self, metadata: dict[str, Any]) -> None:
        duration_us = metadata.get("FrameDuration")
        if self._rate_checked or not isinstance(duration_us, int | float) or duration_us <= 0:
            return
        self._rate_checked = True
        rate = 1e6 / duration_us
        if abs(rate - self.fps) > 0.05 * self.fps:
            log.warning(
                "Pi camera %s runs at %.3g fps, %g asked (the sensor mode for %dx%d "
                "cannot go faster, or the exposure is too long)",
                self.model,
                rate,
                self.fps,
                *self._size,
            )

    def still(self) -> av.VideoFrame:
        """The latest frame when one was read lately (a running recording's), else the next."""
        with self._state:
            latest = self._latest
        fresh_ns = int(max(0.5, 3 / self.fps) * 1e9)
        if latest is None or time.monotonic_ns() - latest[0] > fresh_ns:
            wait_settled(self._opened_ns, SETTLE_S)
            captured = self.read(self.still_timeout_s, threading.Event())
            assert captured is not None  # nobody can set a fresh Event
            frame = captured.frame
        else:
            frame = latest[1]
        # A frame of its own: the recorder may be encoding (and re-stamping) the original.
        return av.VideoFrame.from_ndarray(frame.to_ndarray(), format="yuv420p")

    def close(self) -> None:
        """Stop and close the camera; safe to call twice. A camera that will not stop
        is left to its thread (see the module docstring)."""
        cam, self._cam = self._cam, None
        worker, self._worker = self._worker, None
        if cam is None or worker is None:
            return
        try:
            worker.call(lambda: _close_quietly(cam), self.close_timeout_s, "stopping the Pi camera")
        except CameraError as err:
            self._stuck = worker
            log.error("%s; the camera stays held by this process until that call returns", err)
        finally:
            worker.stop()


def _result(future: Future[Any], timeout_s: float, what: str) -> Any:
    """The future's result; CameraError after ``timeout_s`` or when it failed otherwise."""
    try:
        return result_within(future, timeout_s, what)
    except CameraError:
        raise
    except Exception as err:
        raise CameraError(f"{what} failed: {_reason(err)}") from err


def _close_when_started(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        _close_quietly(future.result())
