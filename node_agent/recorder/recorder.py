"""The recorder: one recording at a time, armed for a scheduled start, hashed while written."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from node_agent.errors import NotFound, RecorderFailure, RecordingConflict
from node_agent.recorder.backends import CameraBackend, CameraError, make_backend
from node_agent.recorder.manifest import (
    manifest_name,
    read_manifest,
    recording_name,
    write_manifest,
)
from node_agent.recorder.schedule import Fired, wait_until_ns
from node_agent.recorder.writer import EncoderUnavailable, Mp4Writer, warm_up_encoder
from node_agent.schemas import (
    ClockStatus,
    Manifest,
    Position,
    RecorderState,
    RecorderStatus,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
)
from node_agent.settings import CameraSettings
from node_agent.telemetry.clock import ClockMonitor

log = logging.getLogger(__name__)

_MAX_REMEMBERED_COMMANDS = 1024
_R = TypeVar("_R", StartResult, StopResult)


@dataclass
class Identity:
    """Who this recorder records as."""

    node_id: str
    cam_id: str
    position: Position
    version: str


@dataclass
class RecordingJob:
    """One recording: armed, then running in its own thread until stopped."""

    session_id: str
    start_at_ns: int  # when the recorder begins: the requested instant, or now if that passed
    requested_start_ns: int | None  # start_at_ns as the command asked for it
    path: Path
    camera: CameraSettings
    backend: CameraBackend
    writer: Mp4Writer
    clock: ClockMonitor
    identity: Identity
    armed_at_ns: int = field(default_factory=time.time_ns)
    stop_event: threading.Event = field(default_factory=threading.Event)
    started_event: threading.Event = field(default_factory=threading.Event)
    done_event: threading.Event = field(default_factory=threading.Event)
    first_frame_ns: int | None = None
    last_frame_ns: int | None = None
    frames: int = 0
    dropped_frames: int = 0
    encode_fps: float = 0.0
    clock_at_start: ClockStatus | None = None
    realtime_start: bool = False
    manifest: Manifest | None = None
    cancelled: bool = False
    error: str | None = None
    stop_reason: str = "stopped"
    thread: threading.Thread | None = None

    def begin(self) -> None:
        """Start the recording thread (it waits for ``start_at_ns`` first)."""
        self.thread = threading.Thread(
            target=self._run, name=f"recorder-{self.session_id}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        syncer = threading.Thread(target=self._sync_loop, name="recorder-fsync", daemon=True)
        try:
            fired = wait_until_ns(self.start_at_ns, self.stop_event)
            if fired is None:
                self.cancelled = True
                return
            self._capture(fired, syncer)
        except Exception as err:  # the camera or encoder failed mid-recording
            log.exception("recording %s failed", self.session_id)
            self.error = f"{type(err).__name__}: {err}"
            self.stop_reason = f"error: {self.error}"
        finally:
            self._finish()
            self.done_event.set()

    def _capture(self, fired: Fired, syncer: threading.Thread) -> None:
        period_ns = 1e9 / self.camera.fps
        # Frames are paced on the monotonic clock (a chrony step must not stall or rush
        # them) and stamped on the wall clock that the start was scheduled on.
        t0_wall, t0 = fired.wall_ns, fired.monotonic_ns
        self.realtime_start = fired.realtime
        self.first_frame_ns = t0_wall
        self.clock_at_start = self.clock.latest
        self.started_event.set()
        syncer.start()
        index = 0
        window_start, window_frames = t0, 0
        while True:
            slot_ns = t0 + round(index * period_ns)
            now = time.monotonic_ns()
            if now < slot_ns and self.stop_event.wait((slot_ns - now) / 1e9):
                break
            if self.stop_event.is_set():
                break
            capture_ns = t0_wall + (slot_ns - t0)
            frame = self.backend.read(index, capture_ns)
            self.writer.write(frame, index)
            self.frames += 1
            self.last_frame_ns = capture_ns
            window_frames += 1
            now = time.monotonic_ns()
            if now - window_start >= 1_000_000_000:
                self.encode_fps = round(window_frames * 1e9 / (now - window_start), 2)
                window_start, window_frames = now, 0
            # Slots that passed while this frame was being encoded are dropped frames.
            next_index = index + 1
            behind = int((now - (t0 + next_index * period_ns)) // period_ns)
            if behind > 0:
                self.dropped_frames += behind
                next_index += behind
            index = next_index

    def _sync_loop(self) -> None:
        # fdatasync once a second so the stop (and a power cut) has little left to flush.
        while not self.done_event.wait(1.0) and not self.stop_event.is_set():
            try:
                self.writer.sink.sync()
            except (OSError, ValueError):
                return

    def _finish(self) -> None:
        try:
            size, sha = self.writer.close()
        except Exception as err:
            log.exception("closing %s failed", self.path)
            self.error = self.error or f"closing the file failed: {err}"
            self.stop_reason = f"error: {self.error}"
            # The hash still covers every byte that reached the file.
            size, sha = self.writer.sink.size_bytes, self.writer.sink.close()
        finally:
            self.backend.close()
        if self.cancelled or self.first_frame_ns is None:
            self.path.unlink(missing_ok=True)
            return
        last = self.last_frame_ns or self.first_frame_ns
        clock = self.clock_at_start or ClockStatus(source="none", synchronized=False)
        self.manifest = Manifest(
            session_id=self.session_id,
            cam_id=self.identity.cam_id,
            node_id=self.identity.node_id,
            position=self.identity.position,
            file_name=self.path.name,
            scheduled_start_ns=self.requested_start_ns,
            first_frame_ns=self.first_frame_ns,
            realtime_start=self.realtime_start,
            last_frame_ns=last,
            clock_offset_ns=clock.offset_ns,
            clock_synchronized=clock.synchronized,
            duration_s=round((last - self.first_frame_ns) / 1e9 + 1 / self.camera.fps, 6)
            if self.frames
            else 0.0,
            frame_count=self.frames,
            dropped_frames=self.dropped_frames,
            width=self.camera.width,
            height=self.camera.height,
            fps=self.camera.fps,
            codec=self.camera.codec,
            encoder=self.writer.encoder,
            bitrate_bps=self.camera.bitrate_bps,
            size_bytes=size,
            sha256=sha,
            software_version=self.identity.version,
            stop_reason=self.stop_reason,
        )
        write_manifest(self.path.parent, self.manifest)


class Recorder:
    """Owns the camera: starts, stops and remembers recordings by command id."""

    def __init__(
        self,
        directory: Path,
        camera: CameraSettings,
        identity: Identity,
        clock: ClockMonitor,
        max_schedule_ahead_s: float = 300.0,
    ) -> None:
        self.directory = directory
        self.camera = camera
        self.identity = identity
        self.clock = clock
        self.max_schedule_ahead_s = max_schedule_ahead_s
        self.job: RecordingJob | None = None
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._commands: OrderedDict[str, StartResult | StopResult] = OrderedDict()

    # -- commands ---------------------------------------------------------------------------

    def start(self, req: StartRequest) -> StartResult:
        """Arm a recording for ``req.start_at_ns`` (or now); idempotent by ``command_id``."""
        with self._lock:
            seen = self._commands.get(req.command_id)
            if isinstance(seen, StartResult):
                return seen
            job = self.job
            if job is not None and not job.done_event.is_set():
                if job.session_id == req.session_id:
                    return self._remember(req.command_id, self._start_result(job, req.command_id))
                raise RecordingConflict(
                    f"this node is already recording session {job.session_id}; "
                    f"stop it before starting {req.session_id}"
                )
            if (self.directory / manifest_name(req.session_id, self.identity.cam_id)).exists():
                raise RecordingConflict(
                    f"session {req.session_id} was already recorded on this node; "
                    "start a new session"
                )
            now = time.time_ns()
            # A start_at that has already passed (the command came late) starts at once;
            # the manifest keeps the requested instant so the lateness shows.
            start_at = max(req.start_at_ns or now, now)
            if start_at - now > self.max_schedule_ahead_s * 1e9:
                raise RecordingConflict(
                    f"start_at_ns is {(start_at - now) / 1e9:.0f} s ahead; this node accepts at "
                    f"most {self.max_schedule_ahead_s:.0f} s (check the coordinator's clock)"
                )
            job = self._arm(req.session_id, start_at, req.start_at_ns)
            self.job = job
            job.begin()
            return self._remember(req.command_id, self._start_result(job, req.command_id))

    async def stop(self, req: StopRequest) -> StopResult:
        """Stop the session's recording and return its manifest; idempotent."""
        seen = self._commands.get(req.command_id)
        if isinstance(seen, StopResult):
            return seen
        job = self.job
        if job is None or job.session_id != req.session_id:
            path = self.directory / manifest_name(req.session_id, self.identity.cam_id)
            if path.exists():  # already stopped earlier (maybe by another command id)
                result = StopResult(
                    session_id=req.session_id,
                    command_id=req.command_id,
                    state="stopped",
                    manifest=read_manifest(path),
                )
                return self._remember(req.command_id, result)
            raise NotFound(f"session {req.session_id} is not recording on this node")
        job.stop_event.set()
        await asyncio.to_thread(job.done_event.wait)
        result = StopResult(
            session_id=req.session_id,
            command_id=req.command_id,
            state="cancelled" if job.cancelled else "stopped",
            manifest=job.manifest,
        )
        if job.error:
            self.last_error = job.error
        return self._remember(req.command_id, result)

    def shutdown(self, timeout_s: float = 10.0) -> Manifest | None:
        """Finish whatever is recording (the agent is exiting); returns its manifest."""
        job = self.job
        if job is None or job.done_event.is_set():
            return None
        job.stop_reason = "agent shutdown"
        job.stop_event.set()
        job.done_event.wait(timeout_s)
        return job.manifest

    def warm_up(self) -> str:
        """Open the camera and the encoder once at start-up (see ``warm_up_encoder``)."""
        cam = self.camera
        backend = make_backend(cam.source, cam.width, cam.height, self.identity.cam_id)
        backend.open()
        try:
            backend.read(0, time.time_ns())
        finally:
            backend.close()
        return warm_up_encoder(cam.codec, cam.width, cam.height, cam.fps, cam.bitrate_bps)

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> RecorderState:
        """idle, armed, recording or stopping."""
        job = self.job
        if job is None or job.done_event.is_set():
            return RecorderState.idle
        if job.stop_event.is_set():
            return RecorderState.stopping
        if not job.started_event.is_set():
            return RecorderState.armed
        return RecorderState.recording

    def status(self) -> RecorderStatus:
        """The recorder's part of the node status."""
        job = self.job
        state = self.state
        active = job if job is not None and state != RecorderState.idle else None
        return RecorderStatus(
            state=state,
            session_id=active.session_id if active else None,
            file_name=active.path.name if active else None,
            start_at_ns=active.start_at_ns if active else None,
            first_frame_ns=active.first_frame_ns if active else None,
            frames=active.frames if active else 0,
            dropped_frames=active.dropped_frames if active else 0,
            encode_fps=active.encode_fps if active else 0.0,
            codec=self.camera.codec,
            width=self.camera.width,
            height=self.camera.height,
            fps=self.camera.fps,
            bitrate_bps=self.camera.bitrate_bps,
            last_error=self.last_error or (job.error if job else None),
        )

    # -- internals --------------------------------------------------------------------------

    def _arm(self, session_id: str, start_at_ns: int, requested_ns: int | None) -> RecordingJob:
        cam = self.camera
        path = self.directory / recording_name(session_id, self.identity.cam_id, start_at_ns)
        try:
            backend = make_backend(cam.source, cam.width, cam.height, self.identity.cam_id)
            backend.open()
        except CameraError as err:
            self.last_error = str(err)
            raise RecorderFailure(f"camera: {err}") from err
        try:
            writer = Mp4Writer(
                path,
                cam.codec,
                cam.width,
                cam.height,
                cam.fps,
                cam.bitrate_bps,
                gop_frames=max(1, round(cam.fps * cam.gop_s)),
            )
        except FileExistsError as err:
            backend.close()
            raise RecordingConflict(f"{path.name} already exists on this node") from err
        except (EncoderUnavailable, OSError) as err:
            backend.close()
            self.last_error = str(err)
            raise RecorderFailure(f"encoder: {err}") from err
        return RecordingJob(
            session_id=session_id,
            start_at_ns=start_at_ns,
            requested_start_ns=requested_ns,
            path=path,
            camera=cam,
            backend=backend,
            writer=writer,
            clock=self.clock,
            identity=self.identity,
        )

    @staticmethod
    def _start_result(job: RecordingJob, command_id: str) -> StartResult:
        state = RecorderState.recording if job.started_event.is_set() else RecorderState.armed
        return StartResult(
            session_id=job.session_id,
            command_id=command_id,
            state=state,
            file_name=job.path.name,
            start_at_ns=job.start_at_ns,
            scheduled=job.requested_start_ns is not None,
            armed_at_ns=job.armed_at_ns,
        )

    def _remember(self, command_id: str, result: _R) -> _R:
        self._commands[command_id] = result
        while len(self._commands) > _MAX_REMEMBERED_COMMANDS:
            self._commands.popitem(last=False)
        return result
