"""Where the live view's frames come from, without disturbing the recording.

While a recording runs, the frames are the camera's own: picamera2's second, small
``lores`` stream when the backend has one (the ISP scales it), else the recording's
latest frame (what the preview still shows), scaled here in the live view's thread.
An idle synthetic camera costs nothing to run, so it streams while idle too; an idle
real camera is not opened for the view (a start would then find it busy), and the
view says so.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING

import av

from node_agent.camera.lores import LoresCapable
from node_agent.camera.protocol import BackendFactory, CameraBackend
from node_agent.camera.synthetic import SyntheticCamera
from node_agent.errors import RecordingConflict
from node_agent.liveview.settings import LiveViewSettings

if TYPE_CHECKING:
    from node_agent.recorder.service import Recorder


class LiveUnavailable(RecordingConflict):
    """The camera cannot be viewed now (a 409); the message says why."""

    code = "liveview_unavailable"


def with_lores(factory: BackendFactory, settings: LiveViewSettings) -> BackendFactory:
    """``factory``, whose backends that have a second small stream are asked for one at
    the live view's size (before they open)."""

    @wraps(factory)
    def make(
        source: str,
        width: int,
        height: int,
        fps: float,
        camera_id: str = "",
        *,
        device: str | None = None,
    ) -> CameraBackend:
        backend = factory(source, width, height, fps, camera_id, device=device)
        if settings.enabled and isinstance(backend, LoresCapable):
            backend.configure_lores(settings.width, settings.height)
        return backend

    return make


def scaled(frame: av.VideoFrame, width: int, height: int) -> av.VideoFrame:
    """``frame`` as RGB at ``width`` x ``height`` (a new frame; the original is untouched)."""
    return frame.reformat(width=width, height=height, format="rgb24")


class LiveSource:
    """``grab()``: the newest frame to show, at the live view's size."""

    def __init__(
        self,
        recorder: Recorder,
        settings: LiveViewSettings,
        idle_camera: Callable[[int, int, float, str], SyntheticCamera] = SyntheticCamera,
    ) -> None:
        self.recorder = recorder
        self.settings = settings
        self.kind: str | None = None  # lores, recording or idle: what the last frame was
        self._idle_camera = idle_camera
        self._idle: SyntheticCamera | None = None

    def check(self) -> None:
        """LiveUnavailable when there is nothing to show (said before a stream begins)."""
        if self.recorder.active_job() is not None:
            return
        cam = self.recorder.camera
        owner = self.recorder.lock.owner
        if owner is not None:
            raise LiveUnavailable(f"the camera is busy ({owner}); the live view needs a recording")
        if cam.source != "synthetic":
            raise LiveUnavailable(
                f"the camera ({cam.source}) is not recording: the live view shows a running "
                "recording's stream, and opening an idle camera for it would make a start "
                "find the camera busy; start a recording, or see the preview still"
            )

    def grab(self) -> av.VideoFrame | None:
        """The newest frame (None: none yet, e.g. a recording armed for later);
        LiveUnavailable when the camera stopped being viewable."""
        s = self.settings
        job = self.recorder.active_job()
        if job is not None:
            self.close_idle()
            backend = job.backend
            if isinstance(backend, LoresCapable) and (small := backend.latest_lores()):
                self.kind = "lores"
                return scaled(small, s.width, s.height)
            latest = job.latest
            if latest is None:
                return None
            self.kind = "recording"
            return scaled(latest.frame, s.width, s.height)
        self.check()
        if self._idle is None:
            profile = self.recorder.profiles.current
            cam_id = self.recorder.identity.cam_id
            self._idle = self._idle_camera(s.width, s.height, profile.fps, cam_id)
            self._idle.open()
        self.kind = "idle"
        return scaled(self._idle.still(), s.width, s.height)

    def close_idle(self) -> None:
        """Drop the idle camera (the view ended, or a recording began)."""
        idle, self._idle = self._idle, None
        if idle is not None:
            idle.close()
