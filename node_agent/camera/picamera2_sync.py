"""libcamera's software camera sync through picamera2: the controls that turn it on, and the
wait for ``SyncReady``.

The controls (libcamera ``control_ids_rpi.yaml``): ``SyncMode`` (``controls.rpi.
SyncModeEnum.Server`` or ``.Client``) and, on the server only, ``SyncFrames``, the frames
it counts before declaring readiness. Each request's metadata then carries ``SyncReady``
(true from the agreed frame on, on the server and on every client alike) and
``SyncTimer`` (µs until that frame; on the ready frame, how far this camera's frame start
is from the agreed instant). A client reports no ``SyncTimer`` until it has heard the
server. Sync needs a fixed frame rate, which the backend pins anyway.

The wait uses picamera2's own ``capture_sync_request`` job, which drops requests until
one says ``SyncReady``, with a deadline like every other capture here.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as JobTimeout
from typing import Any

from node_agent.camera.protocol import CameraError
from node_agent.camera.worker import CameraWorker
from node_agent.schemas import FrameSyncReport

log = logging.getLogger(__name__)


def sync_controls(cam: Any, mode: str, ready_frames: int | None) -> dict[str, Any]:
    """The controls that turn sync on for ``mode``; CameraError when this libcamera has none."""
    try:
        from libcamera import controls
    except ImportError as err:
        raise CameraError(f"libcamera's Python bindings cannot be imported ({err})") from err
    available = getattr(cam, "camera_controls", {}) or {}
    enum = getattr(getattr(controls, "rpi", None), "SyncModeEnum", None)
    if enum is None or "SyncMode" not in available:
        raise CameraError(
            "this libcamera has no SyncMode control (software camera sync came with "
            "libcamera 0.5 on Raspberry Pi OS; update it: apt full-upgrade)"
        )
    ctrls: dict[str, Any] = {"SyncMode": enum.Server if mode == "server" else enum.Client}
    if mode == "server" and ready_frames is not None:
        ctrls["SyncFrames"] = ready_frames
    return ctrls


def await_sync(
    cam: Any,
    worker: CameraWorker | None,
    mode: str,
    until_wall_ns: int,
    cancel: threading.Event,
    on_result: Any,
) -> FrameSyncReport:
    """Wait for a request that says SyncReady until ``until_wall_ns``; what happened.

    ``on_result`` is the capture's signal function (it releases a request nobody took).
    """
    started = time.monotonic()

    def report(
        ready: bool, timer_us: int | None = None, error: str | None = None
    ) -> FrameSyncReport:
        waited = round((time.monotonic() - started) * 1000, 1)
        return FrameSyncReport(
            mode=mode, ready=ready, timer_us=timer_us, waited_ms=waited, error=error
        )

    try:
        job = cam.capture_sync_request(wait=False, signal_function=on_result.on_finished)
    except Exception as err:
        return report(False, error=f"picamera2 could not wait for sync: {err}")
    while True:
        if cancel.is_set():
            on_result.abandon(job)
            return report(False, error="cancelled before sync was achieved")
        remaining = (until_wall_ns - time.time_ns()) / 1e9
        if remaining <= 0:
            on_result.abandon(job)
            if worker is not None:  # picamera2's remedy for a job that will not finish
                try:
                    worker.call(cam.cancel_all_and_flush, 1.0, "flushing picamera2")
                except CameraError as err:
                    log.warning("%s", err)
            peer = "the server's" if mode == "client" else "the clients'"
            return report(
                False,
                error=f"no SyncReady from libcamera in time; the recording began unsynchronised "
                f"(is {peer} camera running with frame sync, on the same network, at the same "
                "frame rate?)",
            )
        try:
            request = job.get_result(timeout=min(remaining, 0.05))
        except JobTimeout:
            continue
        except CancelledError:
            return report(False, error="the sync wait was cancelled (the camera is closing)")
        except Exception as err:
            return report(False, error=f"picamera2 failed while waiting for sync: {err}")
        try:
            timer = request.get_metadata().get("SyncTimer")
        finally:
            request.release()
        timer_us = int(timer) if isinstance(timer, int | float) else None
        log.info("frame sync (%s) achieved; SyncTimer %s µs", mode, timer_us)
        return report(True, timer_us)
