"""The camera contract: ``CameraBackend``, the frames it hands over, and its one error.

A backend streams frames once opened. ``read`` hands them over in order, each with
the wall-clock instant it was captured; the recorder keeps the ones at or after its
start instant and encodes them. ``begin`` tells a backend that paces itself (the
synthetic camera) where the recording's first frame falls.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Protocol

import av

SOURCES = ("auto", "picamera2", "v4l2", "synthetic")


class CameraError(Exception):
    """The camera could not be opened, or stopped delivering frames; the message says why."""


@dataclass(frozen=True)
class CapturedFrame:
    """One frame and the UTC instant (ns) it was captured.

    ``source`` says what that instant is: ``sensor`` when it is the camera's own
    timestamp of the exposure (SensorTimestamp) turned into wall time, ``capture`` when
    it is when the frame was produced or received.
    """

    frame: av.VideoFrame
    capture_ns: int
    source: str = "capture"


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


class BackendFactory(Protocol):
    """How a camera is made: ``make_backend``'s signature (tests pass their own)."""

    def __call__(
        self,
        source: str,
        width: int,
        height: int,
        fps: float,
        camera_id: str = "",
        *,
        device: str | None = None,
    ) -> CameraBackend:
        """A backend, constructed but not opened."""


def wait_settled(opened_monotonic_ns: int, settle_s: float) -> None:
    """Sleep until ``settle_s`` after the camera opened: auto-exposure and white balance
    need about that long, and a still taken sooner is dark or tinted. The camera keeps
    streaming meanwhile, so the still that follows is of the settled picture."""
    remaining = opened_monotonic_ns + settle_s * 1e9 - time.monotonic_ns()
    if remaining > 0:
        time.sleep(remaining / 1e9)
