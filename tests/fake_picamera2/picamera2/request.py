"""A stand-in for picamera2.request.CompletedRequest: one frame's buffers and metadata.

Reference counting as in picamera2: the request starts with one use; when the count
returns to zero its buffer goes back to the camera, and a second release raises.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from picamera2.picamera2 import Picamera2


class CompletedRequest:
    """A frame libcamera finished: buffers for each stream, and metadata."""

    def __init__(
        self,
        picam2: Picamera2,
        buffers: dict[str, npt.NDArray[np.uint8]],
        metadata: dict[str, Any],
    ) -> None:
        self.picam2 = picam2
        self.ref_count = 1
        self.lock: threading.Lock = picam2.request_lock
        self.stop_count = picam2.stop_count
        self.config: dict[str, Any] = dict(picam2.camera_config or {})
        self._buffers: dict[str, npt.NDArray[np.uint8]] | None = buffers
        self._metadata = metadata
        picam2._buffer(+1)

    def acquire(self) -> None:
        """One more use of this request."""
        with self.lock:
            if self.ref_count == 0:
                raise RuntimeError("CompletedRequest: acquiring lock with ref_count 0")
            self.ref_count += 1

    def release(self) -> None:
        """One use fewer; at zero the buffer goes back to the camera."""
        with self.lock:
            self.ref_count -= 1
            if self.ref_count < 0:
                raise RuntimeError("CompletedRequest: lock now has negative ref_count")
            if self.ref_count == 0:
                self._buffers = None
                self.config = {}
                self.picam2._buffer(-1)

    def make_buffer(self, name: str) -> npt.NDArray[np.uint8]:
        """The named stream's buffer as a 1-D copy."""
        if self._buffers is None or name not in self._buffers:
            raise RuntimeError(f"Stream {name!r} is not defined")
        return np.array(self._buffers[name], dtype=np.uint8)

    def get_metadata(self) -> dict[str, Any]:
        """The frame's metadata (SensorTimestamp, ExposureTime, FrameDuration...)."""
        assert self._buffers is not None, "request used after release"
        return dict(self._metadata)

    def make_array(self, name: str) -> npt.NDArray[np.uint8]:
        """A copy of the named stream, shaped as picamera2 shapes it."""
        config = self.config.get(name)
        if config is None:
            raise RuntimeError(f"Stream {name!r} is not defined")
        buffer = self.make_buffer(name)
        _, h = config["size"]
        stride = config["stride"]
        if config["format"] in ("YUV420", "YVU420"):
            # As picamera2: 1.5 x height rows of stride bytes, padding left in.
            return buffer.reshape((h * 3 // 2, stride)).copy()
        raise RuntimeError("Format " + config["format"] + " not supported")
