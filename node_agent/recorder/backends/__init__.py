"""Camera backends behind one protocol; hardware libraries are imported inside each backend."""

from __future__ import annotations

from typing import Protocol

import av


class CameraError(Exception):
    """The camera could not be opened or stopped delivering frames."""


class CameraBackend(Protocol):
    """A source of video frames at a fixed size and rate."""

    name: str
    width: int
    height: int

    def open(self) -> None:
        """Acquire the camera; raises CameraError with a readable reason."""

    def read(self, index: int, capture_ns: int) -> av.VideoFrame:
        """The frame for slot ``index``, captured at ``capture_ns`` (UTC ns)."""

    def close(self) -> None:
        """Release the camera."""


def make_backend(source: str, width: int, height: int, camera_id: str = "") -> CameraBackend:
    """The backend named by ``camera.source``."""
    if source == "synthetic":
        from node_agent.recorder.backends.synthetic import SyntheticCamera

        return SyntheticCamera(width, height, camera_id)
    raise CameraError(f"unknown camera source {source!r}; this build knows: synthetic")
