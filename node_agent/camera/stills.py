"""Stills: one frame from a camera taken under its lock, and JPEG with a chosen quality,
written atomically.

picamera2's ``capture_file`` has no quality setting (the timelapse research notes
it); every backend therefore hands over a frame and the quality is applied here.
"""

from __future__ import annotations

import io
from pathlib import Path

import av

from common.fsutil import atomic_write_bytes
from node_agent.camera.lock import CameraLock
from node_agent.camera.protocol import BackendFactory


def encode_jpeg(frame: av.VideoFrame, quality: int = 85) -> bytes:
    """The frame as a JPEG of ``quality`` (1-100)."""
    buf = io.BytesIO()
    image = frame.to_image()  # type: ignore[no-untyped-call]
    image.save(buf, format="JPEG", quality=max(1, min(100, quality)))
    return buf.getvalue()


def save_jpeg(path: Path, frame: av.VideoFrame, quality: int = 85) -> int:
    """Write the frame as a JPEG at ``path`` (temp + fsync + rename); returns its size."""
    data = encode_jpeg(frame, quality)
    atomic_write_bytes(path, data)
    return len(data)


def capture_still(
    factory: BackendFactory,
    lock: CameraLock,
    owner: str,
    *,
    source: str,
    width: int,
    height: int,
    fps: float,
    camera_id: str,
    device: str | None,
) -> av.VideoFrame:
    """Take the camera lock, open the camera, take one still, close it (CameraBusy and
    CameraError as they come)."""
    with lock.held(owner):
        backend = factory(source, width, height, fps, camera_id, device=device)
        backend.open()
        try:
            return backend.still()
        finally:
            backend.close()
