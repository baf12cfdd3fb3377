"""The recorder's stills: the Lock View framing still of a session, and the live preview."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av

from node_agent.camera.lock import CameraBusy, CameraLock
from node_agent.camera.protocol import BackendFactory, CameraError
from node_agent.camera.stills import capture_still, encode_jpeg, save_jpeg
from node_agent.clock import Clock
from node_agent.errors import RecorderFailure, RecordingConflict
from node_agent.naming import lockview_name, manifest_name
from node_agent.recorder.job import RecordingJob
from node_agent.recorder.manifest import MANIFEST_LOCK, read_manifest, rewrite_manifest
from node_agent.recorder.profiles import Profiles
from node_agent.recorder.spec import Identity
from node_agent.schemas import LockViewResult
from node_agent.settings import CameraSettings

PREVIEW_CACHE_S = 1.0


class RecorderStills:
    """Stills from the running recording's stream, or from the camera when it is free."""

    def __init__(
        self,
        directory: Path,
        camera: CameraSettings,
        identity: Identity,
        lock: CameraLock,
        profiles: Profiles,
        active_job: Callable[[], RecordingJob | None],
        clock: Clock,
        backend_factory: BackendFactory,
        preview_fallback: Callable[[], bytes | None] | None = None,
    ) -> None:
        self.directory = directory
        self.camera = camera
        self.identity = identity
        self.lock = lock
        self.profiles = profiles
        self._active_job = active_job
        self._clock = clock
        self._factory = backend_factory
        self._fallback = preview_fallback
        self._preview_cache: tuple[int, bytes] | None = None

    def lockview(self, session_id: str) -> LockViewResult:
        """Save the framing still of ``session_id`` and reference it in its manifest."""
        job = self._active_job()
        if job is not None and job.session_id != session_id:
            raise RecordingConflict(
                f"this node is recording session {job.session_id}, not {session_id}"
            )
        if job is not None and job.latest is not None:
            frame, captured, source = job.latest.frame, job.latest.capture_ns, "stream"
        elif job is not None:  # armed: the camera is open and idle until start_at
            frame, captured, source = job.backend.still(), self._clock.time_ns(), "camera"
        else:
            frame, captured, source = self.capture("lock view"), self._clock.time_ns(), "camera"
        cam_id = self.identity.cam_id
        path = self.directory / lockview_name(session_id, cam_id)
        size = save_jpeg(path, frame, self.camera.jpeg_quality)
        manifest_path = self.directory / manifest_name(session_id, cam_id)
        with MANIFEST_LOCK:  # a confirm may rewrite the same manifest
            if manifest_path.exists():  # taken after the stop: the manifest learns of it now
                manifest = read_manifest(manifest_path)
                update = {"lockview_file": path.name}
                rewrite_manifest(manifest_path, manifest.model_copy(update=update))
        return LockViewResult(
            session_id=session_id,
            file_name=path.name,
            size_bytes=size,
            captured_ns=captured,
            source=source,
        )

    def preview_jpeg(self) -> bytes:
        """A recent still, never waiting for the camera: from the running recording, else a
        capture when the camera is free, else what ``preview_fallback`` offers (the
        timelapse's last still); CameraBusy when there is nothing to show."""
        job = self._active_job()
        if job is not None and job.latest is not None:
            return encode_jpeg(job.latest.frame, self.camera.jpeg_quality)
        cached = self._preview_cache
        now = self._clock.monotonic_ns()
        if cached is not None and now - cached[0] < PREVIEW_CACHE_S * 1e9:
            return cached[1]
        try:
            data = encode_jpeg(self.capture("preview"), self.camera.jpeg_quality)
        except CameraBusy:
            if self._fallback is not None and (still := self._fallback()):
                return still
            raise
        self._preview_cache = (self._clock.monotonic_ns(), data)
        return data

    def forget_preview(self) -> None:
        """Drop the cached preview: the next one is taken afresh."""
        self._preview_cache = None

    def capture(self, owner: str) -> av.VideoFrame:
        """Open the camera under its lock, take one frame, close it."""
        profile = self.profiles.current
        try:
            return capture_still(
                self._factory,
                self.lock,
                owner,
                source=self.camera.source,
                width=profile.width,
                height=profile.height,
                fps=profile.fps,
                camera_id=self.identity.cam_id,
                device=self.camera.device,
            )
        except CameraError as err:
            raise RecorderFailure(f"camera: {err}") from err
