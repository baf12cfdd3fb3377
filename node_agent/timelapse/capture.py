"""The timelapse's camera: opened once for a run, a still per slot, every call under a
deadline so a hung camera costs one failure and a reconnect, never the daemon."""

from __future__ import annotations

import logging
import threading

import av

from node_agent.camera.protocol import BackendFactory, CameraBackend, CameraError
from node_agent.camera.worker import call_with_deadline

log = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


def describe(err: BaseException) -> str:
    """An error as the status page shows it: a camera's own words, else its type too."""
    text = str(err) or type(err).__name__
    return text if isinstance(err, CameraError) else f"{type(err).__name__}: {text}"


class StillCamera:
    """One backend at a time: open with a deadline, stills with a deadline, close."""

    def __init__(
        self,
        factory: BackendFactory,
        *,
        source: str,
        device: str | None,
        width: int,
        height: int,
        fps: float,
        cam_id: str,
    ) -> None:
        self._factory = factory
        self._args = (source, width, height, fps, cam_id)
        self._device = device
        self.width, self.height = width, height
        self._lock = threading.Lock()
        self._backend: CameraBackend | None = None

    @property
    def is_open(self) -> bool:
        """Whether a camera is open."""
        with self._lock:
            return self._backend is not None

    def open(self, timeout_s: float) -> None:
        """Make and open the camera; raises what it raised (a failed one is abandoned)."""
        backend: CameraBackend | None = None
        try:
            backend = self._factory(*self._args, device=self._device)
            call_with_deadline(backend.open, timeout_s, "open")
        except BaseException:
            if backend is not None:
                _abandon(backend)
            raise
        with self._lock:
            self._backend = backend

    def still(self, timeout_s: float) -> av.VideoFrame:
        """A still at the run's size."""
        with self._lock:
            backend = self._backend
        assert backend is not None, "still() before open()"
        frame = call_with_deadline(backend.still, timeout_s, "still")
        if (frame.width, frame.height) != (self.width, self.height):
            frame = frame.reformat(width=self.width, height=self.height)
        return frame

    def close(self) -> None:
        """Close the camera if one is open; a failing close is logged, nothing kept."""
        with self._lock:
            backend, self._backend = self._backend, None
        if backend is not None:
            try:
                call_with_deadline(backend.close, CLOSE_TIMEOUT_S, "close")
            except Exception as err:  # closing a failed camera may fail too; nothing to keep
                log.warning("timelapse: closing the camera failed: %s", describe(err))


def _abandon(backend: CameraBackend) -> None:
    """Close a camera that failed to open, without waiting for it."""

    def close_quietly() -> None:
        try:
            backend.close()
        except Exception as err:  # it already failed; only worth a debug line
            log.debug("closing a camera that failed to open: %s", describe(err))

    threading.Thread(target=close_quietly, name="timelapse-abandon", daemon=True).start()
