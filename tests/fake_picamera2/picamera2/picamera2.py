"""A stand-in for picamera2.Picamera2, for tests on machines without a Pi camera.

It keeps the real class's names, arguments and behaviour where the camfleet backend
relies on them: ``global_camera_info()`` (sorted as picamera2 sorts, USB last), the
constructor's errors (IndexError with no camera, RuntimeError when busy),
``create_video_configuration``/``configure``/``start``, and the event loop: a frame
arrives every FrameDurationLimits period, is stamped with SensorTimestamp on
CLOCK_MONOTONIC (as on a Pi), at most one finished request is kept (``queue=True``),
queued jobs run when a frame arrives, a frame is lost when all ``buffer_count``
buffers are held by the application, and ``cancel_all_and_flush`` cancels jobs.
Only YUV420 streams are generated (that is all the backend asks for): ``main``, and a
``lores`` as picamera2 makes it (YUV420, no larger than main, its own stride; the
fake draws the same test pattern at the lores size rather than scaling main).
Controls are checked against ``camera_controls`` as picamera2 does ("not advertised by
libcamera"); ``SyncMode``/``SyncFrames`` run the software camera sync of ``_sync`` and
add ``SyncReady``/``SyncTimer`` to the metadata; ``capture_sync_request`` is picamera2's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from picamera2._rig import Rig, frame_buffer, rig
from picamera2._sync import SyncAlgorithm
from picamera2.job import Job
from picamera2.request import CompletedRequest


class Picamera2:
    """One camera, opened by the constructor."""

    rig: Rig = rig

    @staticmethod
    def global_camera_info() -> list[dict[str, Any]]:
        """One dict per camera (Model, Location, Rotation, Id, Num), USB cameras last."""
        cameras = [dict(info) for info in rig.cameras]
        return sorted(cameras, key=lambda cam: ("/usb" not in cam["Id"], cam["Id"]), reverse=True)

    def __init__(
        self,
        camera_num: int = 0,
        verbose_console: int | None = None,
        tuning: Any = None,
        allocator: Any = None,
    ) -> None:
        self.is_open = False
        self.started = False
        if rig.open_hangs:
            rig.block()
        # As picamera2: an IndexError when there is no such camera.
        camera_num = self.global_camera_info()[camera_num]["Num"]
        self.camera_idx = camera_num
        self.request_lock = threading.Lock()
        self.lock = threading.Lock()
        self._job_list: list[Job[Any]] = []
        self.completed_requests: list[CompletedRequest] = []
        self.camera_config: dict[str, Any] | None = None
        self.stop_count = 0
        self.configure_count = 0
        self.frames = 0
        self._max_queue_len = 1
        self._frame_duration_us = 33333
        self._outstanding = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        try:
            rig.acquire(camera_num)
        except Exception as err:
            raise RuntimeError("Camera __init__ sequence did not complete.") from err
        self.is_open = True
        self.camera_properties = {"Model": rig.cameras[camera_num]["Model"]}
        self.camera_controls: dict[str, tuple[Any, Any, Any]] = {
            "FrameDurationLimits": (rig.min_frame_duration_us, 1_000_000_000, 33333),
            "NoiseReductionMode": (0, 4, 0),
            "ExposureTime": (26, 1_000_000_000, 20000),
        }
        if rig.sync_supported:  # libcamera's ipa_base.cpp advertises these two
            self.camera_controls["SyncMode"] = (0, 2, 0)
            self.camera_controls["SyncFrames"] = (100, 100000, 1000)

    def __enter__(self) -> Picamera2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create_video_configuration(
        self,
        main: dict[str, Any] | None = None,
        lores: dict[str, Any] | None = None,
        raw: dict[str, Any] | None = None,
        transform: Any = None,
        colour_space: Any = None,
        buffer_count: int = 6,
        controls: dict[str, Any] | None = None,
        display: str | None = "main",
        encode: str | None = "main",
        queue: bool = True,
        sensor: dict[str, Any] | None = None,
        use_case: str = "video",
    ) -> dict[str, Any]:
        """A configuration for video, as picamera2 builds it (XBGR8888 1280x720 by default)."""
        if not self.is_open:
            raise RuntimeError("Camera not opened")
        stream = _stream_config({"format": "XBGR8888", "size": (1280, 720)}, main or {})
        stream["size"] = (
            stream["size"][0] - stream["size"][0] % 2,
            stream["size"][1] - stream["size"][1] % 2,
        )
        config: dict[str, Any] = {
            "use_case": use_case,
            "transform": transform,
            "colour_space": colour_space,
            "buffer_count": buffer_count,
            "queue": queue,
            "main": stream,
            "lores": (
                _stream_config({"format": "YUV420", "size": stream["size"]}, lores)
                if lores is not None
                else None
            ),
            "raw": raw,
            "controls": {"NoiseReductionMode": 1, "FrameDurationLimits": (33333, 33333)}
            | (controls or {}),
            "sensor": sensor or {},
        }
        for role, name in (("Display", display), ("Encode", encode)):
            if name is not None and config.get(name) is None:
                raise RuntimeError(f"{role} stream {name} was not defined")
        config["display"], config["encode"] = display, encode
        return config

    def configure(self, camera_config: dict[str, Any] | None = None) -> None:
        """Apply a configuration: sizes checked, strides and frame duration fixed."""
        if self.started:
            raise RuntimeError("Camera must be stopped before configuring")
        if not isinstance(camera_config, dict):
            raise TypeError("Invalid type for `camera_config` given")
        config = dict(camera_config)
        main = dict(config["main"])
        if main.get("format") not in ("YUV420", "YVU420"):
            raise RuntimeError(
                f"Bad format {main.get('format')} in stream main (the fake makes YUV420 only)"
            )
        size = main.get("size")
        if type(size) is not tuple or len(size) != 2:
            raise RuntimeError("size in main stream should be (width, height)")
        if size[0] % 2 or size[1] % 2:
            raise RuntimeError("width and height should be even")
        width, height = size
        stride = -(-width // rig.stride_align) * rig.stride_align
        main["stride"] = stride
        main["framesize"] = stride * height * 3 // 2
        config["main"] = main
        if config.get("lores") is not None:
            config["lores"] = _lores(dict(config["lores"]), size)
        for name in config["controls"]:
            if name not in self.camera_controls:
                raise RuntimeError(f"Control {name} is not advertised by libcamera")
        self.camera_config = config
        self._max_queue_len = 1 if config["queue"] and config["buffer_count"] > 1 else 0
        limits = config["controls"].get("FrameDurationLimits", (33333, 33333))
        self._frame_duration_us = max(int(limits[0]), rig.min_frame_duration_us)
        self.configure_count += 1

    def stream_configuration(self, name: str = "main") -> dict[str, Any]:
        """The configuration of the named stream."""
        assert self.camera_config is not None
        stream: dict[str, Any] = self.camera_config[name]
        return stream

    def start(
        self, config: dict[str, Any] | None = None, show_preview: bool | None = False
    ) -> None:
        """Start streaming (and the event loop that hands out requests)."""
        if config is not None:
            self.configure(config)
        if not self.camera_config:
            raise RuntimeError("Camera has not been configured")
        if self.started:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._sensor, name="fake picamera2 sensor", daemon=True
        )
        self._thread.start()
        self.started = True

    def _sensor(self) -> None:
        assert self.camera_config is not None
        period_ns = self._frame_duration_us * 1000
        exposure_us = min(10_000, self._frame_duration_us - 500)
        # Frames start on a grid of the period, shifted by the rig's phase: two cameras are
        # out of step by exactly what a test says until sync lines them up.
        first = (time.monotonic_ns() // period_ns + 1) * period_ns + rig.phase_ns % period_ns
        wall_offset = time.time_ns() - time.monotonic_ns()
        ctrls = self.camera_config["controls"]
        sync = None
        if int(ctrls.get("SyncMode", 0)):
            sync = SyncAlgorithm(
                int(ctrls["SyncMode"]),
                int(ctrls.get("SyncFrames", 100)),  # the tuning file's ready_frame: 100
                rig.sync_port,
                rig.sync_period,
            )
        try:
            self._stream(first, period_ns, exposure_us, wall_offset, sync)
        finally:
            if sync is not None:
                sync.close()

    def _stream(
        self,
        first: int,
        period_ns: int,
        exposure_us: int,
        wall_offset: int,
        sync: SyncAlgorithm | None,
    ) -> None:
        assert self.camera_config is not None
        main = self.camera_config["main"]
        width, height = main["size"]
        stride = main["stride"]
        lores = self.camera_config.get("lores")
        seq = 0
        while not self._stopping.is_set():
            slot = first + seq * period_ns
            now = time.monotonic_ns()
            if now < slot and self._wake.wait((slot - now) / 1e9):
                self._wake.clear()
                if not self._stopping.is_set():
                    self.process_requests([])  # jobs queued while a request was ready
                continue
            if self._stopping.is_set():
                break
            this, seq = seq, max(seq + 1, (now - first) // period_ns + 1)
            if not rig.delivering():
                continue
            extra: dict[str, Any] = {}
            if sync is not None:  # the IPA runs on every frame the sensor sends
                extra, shorten_ns = sync.process(slot + wall_offset, self._frame_duration_us)
                first -= shorten_ns  # one frame shorter (or longer): later ones follow the server
            if self._outstanding >= self.camera_config["buffer_count"]:
                rig.count(dropped=1)  # the application holds every buffer
                continue
            metadata: dict[str, Any] = {
                "SensorTimestamp": slot,
                "FrameWallClock": slot + wall_offset,
                "ExposureTime": exposure_us,
                "FrameDuration": self._frame_duration_us,
                "AnalogueGain": 1.0,
                "DigitalGain": 1.0,
                "Lux": 400.0,
                "ColourTemperature": 5000,
                "SensorSequence": this,
            } | extra
            buffers = {"main": frame_buffer(this, width, height, stride)}
            if lores is not None:
                lw, lh = lores["size"]
                buffers["lores"] = frame_buffer(this, lw, lh, lores["stride"])
            request = CompletedRequest(self, buffers, metadata)
            rig.count(delivered=1)
            self.frames += 1
            self.process_requests([request])

    def _buffer(self, change: int) -> None:
        """A buffer went to the application (+1) or came back (-1)."""
        self._outstanding += change
        rig.count(outstanding=change)

    def process_requests(self, requests: list[CompletedRequest]) -> None:
        """The event loop's step, as picamera2's: keep, run jobs, recycle, signal."""
        with self.lock:
            for request in requests:
                request.acquire()
            self.completed_requests += requests
            finished: list[Job[Any]] = []
            while self._job_list:
                if self._job_list[0].execute():
                    finished.append(self._job_list.pop(0))
                else:
                    break
            for request in requests:
                request.release()
            while len(self.completed_requests) > self._max_queue_len:
                self.completed_requests.pop(0).release()
        for job in finished:
            job.signal()

    def dispatch_functions(
        self,
        functions: list[Callable[[], tuple[bool, Any]]],
        wait: bool | float | None,
        signal_function: Callable[[Job[Any]], None] | None = None,
        immediate: bool = False,
    ) -> Any:
        """Queue a job for the event loop; wait as picamera2 does (True, False, None or seconds)."""
        if wait is None:
            wait = signal_function is None
        timeout = None if wait is True else wait
        with self.lock:
            only_job = not self._job_list
            job: Job[Any] = Job(functions, signal_function)
            self._job_list.append(job)
            if only_job and (self.completed_requests or immediate):
                self._wake.set()
        return job.get_result(timeout=timeout) if wait else job

    def wait_for_timestamp_(self, timestamp_ns: int | None) -> tuple[bool, None]:
        """Drop requests whose exposure began before ``timestamp_ns``."""
        if not timestamp_ns:
            return (True, None)
        while self.completed_requests:
            md = self.completed_requests[0].get_metadata()
            if md["SensorTimestamp"] - 1000 * md["ExposureTime"] >= timestamp_ns:
                return (True, None)
            self.completed_requests.pop(0).release()
        return (False, None)

    def capture_request_(self) -> tuple[bool, CompletedRequest | None]:
        """Hand the oldest kept request to the caller."""
        if not self.completed_requests:
            return (False, None)
        return (True, self.completed_requests.pop(0))

    def capture_request(
        self,
        wait: bool | float | None = None,
        signal_function: Callable[[Job[Any]], None] | None = None,
        flush: bool | int | None = None,
    ) -> Any:
        """The next finished request (the caller must release it), or a Job for it."""
        if flush is True:
            flush = time.monotonic_ns()
        functions: list[Callable[[], tuple[bool, Any]]] = [
            partial(self.wait_for_timestamp_, flush),
            self.capture_request_,
        ]
        return self.dispatch_functions(functions, wait, signal_function)

    def capture_sync_request_(self) -> tuple[bool, CompletedRequest | None]:
        """Drop requests until one says SyncReady, and hand that one over."""
        if not self.completed_requests:
            return (False, None)
        request = self.completed_requests.pop(0)
        if not request.get_metadata().get("SyncReady", False):
            request.release()
            return (False, None)
        return (True, request)

    def capture_sync_request(
        self,
        wait: bool | float | None = None,
        signal_function: Callable[[Job[Any]], None] | None = None,
    ) -> Any:
        """The first request once the camera system has reached the sync point."""
        return self.dispatch_functions([self.capture_sync_request_], wait, signal_function)

    def wait(self, job: Job[Any], timeout: float | None = None) -> Any:
        """The result of a job from a ``wait=False`` call."""
        return job.get_result(timeout=timeout)

    def cancel_all_and_flush(self) -> None:
        """Cancel every queued job (after a time-out), so the camera can be closed."""
        with self.lock:
            for job in self._job_list:
                job.cancel()
            self._job_list = []

    def stop(self) -> None:
        """Stop streaming; requests still kept are given back."""
        if not self.started:
            return
        if rig.stop_hangs:
            rig.block()
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        self._thread = None
        self._wake.clear()
        self.started = False
        self.stop_count += 1
        with self.lock:
            while self.completed_requests:
                self.completed_requests.pop(0).release()

    def close(self) -> None:
        """Stop, and release the camera for others; a second call does nothing."""
        if not self.is_open:
            return
        self.stop()
        rig.release(self.camera_idx)
        self.is_open = False
        self.camera_config = None


def _lores(lores: dict[str, Any], main_size: tuple[int, int]) -> dict[str, Any]:
    """The lores stream checked as picamera2 checks it, its stride and frame size set."""
    if lores.get("format") not in ("YUV420", "YVU420"):
        raise RuntimeError(f"Bad format {lores.get('format')} in stream lores (YUV420 only)")
    size = lores.get("size")
    if type(size) is not tuple or len(size) != 2:
        raise RuntimeError("size in lores stream should be (width, height)")
    if size[0] > main_size[0] or size[1] > main_size[1]:
        raise RuntimeError("lores stream dimensions may not exceed main stream")
    if size[0] % 2 or size[1] % 2:
        raise RuntimeError("width and height should be even")
    stride = -(-size[0] // rig.stride_align) * rig.stride_align
    lores["stride"] = stride
    lores["framesize"] = stride * size[1] * 3 // 2
    return lores


def _stream_config(defaults: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    valid = ("format", "size", "stride", "preserve_ar")
    stream = dict(defaults)
    for key, value in updates.items():
        if key not in valid:
            raise ValueError(f"Bad key {key!r}: valid stream configuration keys are {valid}")
        stream[key] = value
    return stream
