"""The simulated hardware behind the fake picamera2, and the knobs tests turn.

Not part of the real picamera2: tests import ``picamera2._rig`` to reach it.

Environment, read at import and by ``rig.reset()``:

- ``FAKE_PICAMERA2_CAMERAS``: CSI cameras libcamera lists (default 1; 0 = none)
- ``FAKE_PICAMERA2_USB_CAMERAS``: USB cameras libcamera lists as well (default 0)
- ``FAKE_PICAMERA2_HANG_AFTER``: frames delivered before the sensor goes silent
- ``FAKE_PICAMERA2_SYNC_PORT``: the UDP port of the software camera sync (default 10000)
- ``FAKE_PICAMERA2_NO_SYNC``: 1 = a libcamera without the SyncMode control
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np
import numpy.typing as npt

PAD = 0xAB  # what the stride padding holds: a reader that keeps it gets wrong pixels


def _csi_info(num: int) -> dict[str, Any]:
    return {
        "Model": "imx708",
        "Location": 2,
        "Rotation": 180,
        "Id": f"/base/axi/pcie@120000/rp1/i2c@{88000 + 2000 * num}/imx708@1a",
        "Num": num,
    }


def _usb_info(num: int) -> dict[str, Any]:
    return {
        "Model": "HD Pro Webcam C920",
        "Location": 2,
        "Rotation": 0,
        "Id": f"/base/scb/pcie@7d500000/pci@0,0/usb@0,0-1.{num + 2}:1.0-046d:082d",
        "Num": num,
    }


class Rig:
    """Cameras present, faults to simulate, and counters to check."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._unblock = threading.Event()
        self.reset()

    def reset(self) -> None:
        """Back to the environment's defaults; calls left hanging are let go."""
        self._unblock.set()
        self._unblock = threading.Event()
        csi = int(os.environ.get("FAKE_PICAMERA2_CAMERAS", "1"))
        usb = int(os.environ.get("FAKE_PICAMERA2_USB_CAMERAS", "0"))
        infos = [_csi_info(i) for i in range(csi)] + [_usb_info(i) for i in range(usb)]
        for num, info in enumerate(infos):
            info["Num"] = num
        self.cameras: list[dict[str, Any]] = infos
        hang_after = os.environ.get("FAKE_PICAMERA2_HANG_AFTER")
        self.hang_after: int | None = int(hang_after) if hang_after else None
        self.silent = threading.Event()
        self.open_hangs = False
        self.stop_hangs = False
        self.stride_align = 64
        self.min_frame_duration_us = 8333  # the sensor's fastest mode: 120 fps
        self.sync_port = int(os.environ.get("FAKE_PICAMERA2_SYNC_PORT", "10000"))
        self.sync_supported = os.environ.get("FAKE_PICAMERA2_NO_SYNC") != "1"
        self.sync_period = 30  # libcamera's default: a server packet every 30 frames
        self.phase_ns = 0  # where this process's sensors start their frames (a test shifts it)
        self.open_cameras: set[int] = set()
        self.outstanding = 0
        self.delivered = 0
        self.dropped_no_buffer = 0

    def go_silent(self) -> None:
        """The sensor stops delivering frames (a loose ribbon cable)."""
        self.silent.set()

    def resume(self) -> None:
        """Frames flow again."""
        self.silent.clear()

    def delivering(self) -> bool:
        """Whether the sensor sends the next frame."""
        if self.silent.is_set():
            return False
        return self.hang_after is None or self.delivered < self.hang_after

    def block(self) -> None:
        """Where a hanging call waits, until ``reset()``."""
        self._unblock.wait()

    def acquire(self, num: int) -> None:
        """libcamera's Camera::acquire: one user per camera."""
        with self.lock:
            if num in self.open_cameras:
                raise RuntimeError("Failed to acquire camera: Device or resource busy")
            self.open_cameras.add(num)

    def release(self, num: int) -> None:
        """libcamera's Camera::release."""
        with self.lock:
            self.open_cameras.discard(num)

    def count(self, outstanding: int = 0, delivered: int = 0, dropped: int = 0) -> None:
        """Bookkeeping from the cameras."""
        with self.lock:
            self.outstanding += outstanding
            self.delivered += delivered
            self.dropped_no_buffer += dropped


rig = Rig()

_grids: dict[tuple[int, int], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = {}


def _grid(width: int, height: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    if (width, height) not in _grids:
        yy, xx = np.mgrid[0:height, 0:width]
        _grids[(width, height)] = (xx.astype(np.int64), yy.astype(np.int64))
    return _grids[(width, height)]


def expected_planes(
    seq: int, width: int, height: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The Y, U and V planes of frame ``seq`` (what a correct reader must get)."""
    xx, yy = _grid(width, height)
    y = ((xx + 2 * yy + 3 * seq) % 256).astype(np.uint8)
    cx, cy = _grid(width // 2, height // 2)
    u = ((2 * cx + seq) % 256).astype(np.uint8)
    v = ((2 * cy + 255 - seq) % 256).astype(np.uint8)
    return y, u, v


def frame_buffer(seq: int, width: int, height: int, stride: int) -> npt.NDArray[np.uint8]:
    """Frame ``seq`` as libcamera lays out YUV420: planes of ``stride`` (and half) bytes."""
    buf = np.full(stride * height * 3 // 2, PAD, dtype=np.uint8)
    y, u, v = expected_planes(seq, width, height)
    buf[: stride * height].reshape(height, stride)[:, :width] = y
    cstride, ch, cw = stride // 2, height // 2, width // 2
    u_at = stride * height
    v_at = u_at + cstride * ch
    buf[u_at:v_at].reshape(ch, cstride)[:, :cw] = u
    buf[v_at : v_at + cstride * ch].reshape(ch, cstride)[:, :cw] = v
    return buf
