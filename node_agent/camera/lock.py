"""One lock per camera, shared by the recorder, timelapse, self-test and previews.

It is an ``flock`` on a file in the data folder, so it also holds between processes
(a second agent, or a camera tool run by hand, on the same camera). Taking it never
waits: a busy camera is reported at once, with who holds it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from node_agent.errors import RecordingConflict


class CameraBusy(RecordingConflict):
    """Someone else holds the camera; the message says who (a 409 wherever it surfaces)."""

    code = "camera_busy"


class CameraLock:
    """A non-blocking, owner-labelled lock on one camera."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._owner: str | None = None
        self._mutex = threading.Lock()

    @property
    def owner(self) -> str | None:
        """Who holds the lock in this process (e.g. 'recording 20261122-0930-ab12')."""
        return self._owner

    def acquire(self, owner: str) -> None:
        """Take the lock for ``owner`` or raise CameraBusy naming the holder."""
        with self._mutex:
            if self._fd is not None:
                raise CameraBusy(f"the camera is busy: {self._owner}")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as err:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                os.close(fd)
                raise CameraBusy(f"the camera is busy: {holder}") from err
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{owner} (pid {os.getpid()})\n".encode(), 0)
            self._fd, self._owner = fd, owner

    def release(self) -> None:
        """Give the lock back (no-op when not held)."""
        with self._mutex:
            if self._fd is None:
                return
            fd, self._fd, self._owner = self._fd, None, None
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def held(self, owner: str) -> CameraLockHold:
        """``with lock.held("self-test"): ...``"""
        return CameraLockHold(self, owner)


class CameraLockHold:
    """Context manager returned by ``CameraLock.held``."""

    def __init__(self, lock: CameraLock, owner: str) -> None:
        self.lock, self.owner = lock, owner

    def __enter__(self) -> CameraLock:
        self.lock.acquire(self.owner)
        return self.lock

    def __exit__(self, *exc: object) -> None:
        self.lock.release()
