"""A backend with a second, small stream of the same camera (picamera2's ``lores``).

The live view asks for it before the camera opens (``configure_lores``) and reads its
latest frame while the recording reads the main stream; the ISP scales it, so the
recording's CPU is not spent on it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import av


@runtime_checkable
class LoresCapable(Protocol):
    """What a backend with a second, small stream offers."""

    def configure_lores(self, width: int, height: int) -> None:
        """Also stream ``width`` x ``height`` frames from the next ``open()``."""

    def latest_lores(self) -> av.VideoFrame | None:
        """The small stream's latest fresh frame (None when there is none)."""
