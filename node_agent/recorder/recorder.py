"""The recorder: one recording at a time, gated, armed for a scheduled start, hashed while
written, journaled so that a crash leaves nothing without a manifest."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import av

from node_agent.errors import GateRefused, NotFound, RecorderFailure, RecordingConflict
from node_agent.gates import (
    battery_gate,
    check_writable,
    clock_gate,
    read_temperature_c,
    storage_gate,
    temperature_gate,
)
from node_agent.recorder.backends import CameraBackend, CameraError, CapturedFrame, make_backend
from node_agent.recorder.lock import CameraBusy, CameraLock
from node_agent.recorder.manifest import (
    manifest_name,
    read_manifest,
    recording_name,
    write_manifest,
)
from node_agent.recorder.recovery import Journal, journal_path, write_journal
from node_agent.recorder.schedule import Fired, wait_until_ns
from node_agent.recorder.stills import encode_jpeg, save_jpeg
from node_agent.recorder.writer import EncoderUnavailable, Mp4Writer, warm_up_encoder
from node_agent.schemas import (
    ClockStatus,
    GateResult,
    LockViewResult,
    Manifest,
    Position,
    RecorderState,
    RecorderStatus,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
)
from node_agent.settings import CameraSettings, GateSettings, Profile, StorageSettings
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
class Profiles:
    """The configured profiles, the one in use, and why better ones were left."""

    camera: CameraSettings
    active: int = 0
    notes: list[str] = field(default_factory=list)
    all: list[Profile] = field(init=False)

    def __post_init__(self) -> None:
        self.all = self.camera.profile_list()

    @property
    def current(self) -> Profile:
        return self.all[self.active]

    def bitrate(self, profile: Profile) -> int:
        return self.camera.clamp_bitrate(profile.bitrate_bps)

    def fall_back(self, reason: str) -> bool:
        """Leave the current profile for the next one; False when there is none left."""
        note = f"{self.current.name}: {reason}"
        if note not in self.notes:
            self.notes.append(note)
        log.warning("profile %s", note)
        if self.active + 1 >= len(self.all):
            return False
        self.active += 1
        return True


@dataclass
class RecordingJob:
    """One recording: armed, then running in its own thread until stopped."""

    session_id: str
    start_at_ns: int  # when the recorder begins: the requested instant, or now if that passed
    requested_start_ns: int | None  # start_at_ns as the command asked for it
    path: Path
    profile: Profile
    bitrate_bps: int
    profile_notes: list[str]
    camera: CameraSettings
    storage: StorageSettings
    backend: CameraBackend
    writer: Mp4Writer
    clock: ClockMonitor
    identity: Identity
    on_probation_failed: Callable[[Profile, str], None] | None = None
    on_done: Callable[[], None] | None = None  # frees the camera, notes how it ended
    manifest_wanted: bool = True  # False for self-test clips
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
    latest: CapturedFrame | None = None
    manifest: Manifest | None = None
    cancelled: bool = False
    error: str | None = None
    stop_reason: str = "stopped"
    size_bytes: int = 0
    sha256: str = ""
    thread: threading.Thread | None = None

    def begin(self) -> None:
        """Start the recording thread (it waits for ``start_at_ns`` first)."""
        self.thread = threading.Thread(
            target=self._run, name=f"recorder-{self.session_id}", daemon=True
        )
        self.thread.start()

    def journal(self) -> Journal:
        """What a crash-time manifest would need."""
        clock = self.clock_at_start
        return Journal(
            session_id=self.session_id,
            cam_id=self.identity.cam_id,
            node_id=self.identity.node_id,
            position=self.identity.position,
            file_name=self.path.name,
            scheduled_start_ns=self.requested_start_ns,
            armed_at_ns=self.armed_at_ns,
            profile=self.profile.name,
            profile_notes=self.profile_notes,
            width=self.profile.width,
            height=self.profile.height,
            fps=self.profile.fps,
            codec=self.profile.codec,
            encoder=self.writer.encoder,
            bitrate_bps=self.bitrate_bps,
            software_version=self.identity.version,
            first_frame_ns=self.first_frame_ns,
            clock_offset_ns=clock.offset_ns if clock else None,
            clock_synchronized=clock.synchronized if clock else False,
            realtime_start=self.realtime_start,
        )

    def _run(self) -> None:
        syncer = threading.Thread(target=self._sync_loop, name="recorder-fsync", daemon=True)
        try:
            fired = wait_until_ns(self.start_at_ns, self.stop_event)
            if fired is None:
                self.cancelled = True
                return
            self._capture(fired, syncer)
        except Exception as err:  # the camera, encoder or disk failed mid-recording
            log.exception("recording %s failed", self.session_id)
            self.error = f"{type(err).__name__}: {err}"
            self.stop_reason = f"error: {self.error}"
        finally:
            try:
                self._finish()
            finally:
                if self.on_done is not None:
                    self.on_done()
                self.done_event.set()

    def _capture(self, fired: Fired, syncer: threading.Thread) -> None:
        fps = self.profile.fps
        self.clock_at_start = self.clock.latest
        self.realtime_start = fired.realtime
        self.backend.begin(fired.wall_ns, fired.monotonic_ns)
        reserve_bytes = int(self.storage.reserve_s * self.bitrate_bps / 8)
        probation_end: int | None = None
        last_pts = -1
        window_start, window_frames = time.monotonic_ns(), 0
        next_disk_check = 0.0
        while True:
            got = self.backend.read(self.camera.frame_timeout_s, self.stop_event)
            if got is None:
                break
            if got.capture_ns < self.start_at_ns:
                continue  # a streaming camera's frames from before the start instant
            if self.first_frame_ns is None:
                self.first_frame_ns = got.capture_ns
                probation_end = time.monotonic_ns() + int(self.camera.probation_s * 1e9)
            pts = round((got.capture_ns - self.first_frame_ns) * fps / 1e9)
            if pts <= last_pts:
                pts = last_pts + 1
            if last_pts >= 0 and pts > last_pts + 1:
                self.dropped_frames += pts - last_pts - 1
            self.writer.write(got.frame, pts)
            if last_pts < 0:
                self.started_event.set()
                if self.manifest_wanted:  # the first frame is on its way
                    write_journal(self.path, self.journal())
                syncer.start()
            last_pts = pts
            self.latest = got
            self.frames += 1
            self.last_frame_ns = got.capture_ns
            window_frames += 1
            now = time.monotonic_ns()
            if now - window_start >= 1_000_000_000:
                self.encode_fps = round(window_frames * 1e9 / (now - window_start), 2)
                window_start, window_frames = now, 0
            if probation_end is not None and now >= probation_end:
                probation_end = None
                self._judge_probation()
            if now >= next_disk_check:
                next_disk_check = now + 1e9
                free = _free_bytes(self.path.parent)
                if free < reserve_bytes:
                    self.stop_reason = (
                        f"disk reserve reached: {free / 1e6:.1f} MB free, less than "
                        f"{self.storage.reserve_s:g} s at {self.bitrate_bps / 1e6:g} Mb/s"
                    )
                    log.error("recording %s stopped: %s", self.session_id, self.stop_reason)
                    break

    def _judge_probation(self) -> None:
        expected = self.frames + self.dropped_frames
        ratio = self.dropped_frames / expected if expected else 0.0
        if ratio > self.camera.max_drop_ratio and self.on_probation_failed is not None:
            self.on_probation_failed(
                self.profile,
                f"dropped {ratio:.0%} of frames in the first {self.camera.probation_s:g} s "
                f"(encode {self.encode_fps:.1f} fps of {self.profile.fps:g})",
            )

    def _sync_loop(self) -> None:
        # fdatasync once a second so the stop (and a power cut) has little left to flush.
        while not self.done_event.wait(1.0) and not self.stop_event.is_set():
            try:
                self.writer.sink.sync()
            except (OSError, ValueError):
                return

    def _finish(self) -> None:
        try:
            self.size_bytes, self.sha256 = self.writer.close()
        except Exception as err:
            log.exception("closing %s failed", self.path)
            self.error = self.error or f"closing the file failed: {err}"
            self.stop_reason = f"error: {self.error}"
            # The hash still covers every byte that reached the file.
            self.size_bytes, self.sha256 = self.writer.sink.size_bytes, self.writer.sink.close()
        finally:
            self.backend.close()
        if self.cancelled or self.first_frame_ns is None:
            self.path.unlink(missing_ok=True)
            journal_path(self.path).unlink(missing_ok=True)
            return
        if not self.manifest_wanted:
            return
        self.manifest = self.build_manifest()
        write_manifest(self.path.parent, self.manifest)
        journal_path(self.path).unlink(missing_ok=True)

    def build_manifest(self) -> Manifest:
        """The manifest of the finished recording."""
        assert self.first_frame_ns is not None
        last = self.last_frame_ns or self.first_frame_ns
        lockview = self.path.parent / lockview_name(self.session_id, self.identity.cam_id)
        return self.journal().manifest(
            file_name=self.path.name,
            first_frame_ns=self.first_frame_ns,
            duration_s=round((last - self.first_frame_ns) / 1e9 + 1 / self.profile.fps, 6)
            if self.frames
            else 0.0,
            frame_count=self.frames,
            dropped_frames=self.dropped_frames,
            size_bytes=self.size_bytes,
            sha256=self.sha256,
            stop_reason=self.stop_reason,
            lockview_file=lockview.name if lockview.exists() else None,
        )


def lockview_name(session_id: str, cam_id: str) -> str:
    """``{SESSION_ID}_{CAM_ID}_lockview.jpg``."""
    return f"{session_id}_{cam_id}_lockview.jpg"


def _free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class Recorder:
    """Owns the camera for recordings: gates, starts, stops, remembers commands by id."""

    def __init__(
        self,
        directory: Path,
        camera: CameraSettings,
        identity: Identity,
        clock: ClockMonitor,
        lock: CameraLock,
        storage: StorageSettings | None = None,
        gates: GateSettings | None = None,
        max_schedule_ahead_s: float = 300.0,
    ) -> None:
        self.directory = directory
        self.camera = camera
        self.storage = storage or StorageSettings()
        self.gates = gates or GateSettings()
        self.identity = identity
        self.clock = clock
        self.lock = lock
        self.max_schedule_ahead_s = max_schedule_ahead_s
        self.profiles = Profiles(camera)
        self.job: RecordingJob | None = None
        self.last_error: str | None = None
        self.last_stop_reason: str | None = None
        self.camera_description = camera.source
        self.preview_fallback: Callable[[], bytes | None] | None = None
        self._preview_cache: tuple[float, bytes] | None = None
        self._lock = threading.Lock()
        self._commands: OrderedDict[str, StartResult | StopResult] = OrderedDict()

    # -- commands ---------------------------------------------------------------------------

    def start(self, req: StartRequest) -> StartResult:
        """Check the gates, then arm a recording for ``req.start_at_ns`` (or now).

        Idempotent by ``command_id``; a start of the session already running answers as
        the first one did; anything else while recording is a conflict naming the session.
        """
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
            gates = self.check_gates(req.planned_duration_s)
            refused = [g for g in gates if not g.ok]
            if refused:
                raise GateRefused(refused)
            job = self._arm(req.session_id, start_at, req.start_at_ns, owner="recording")
            self.job = job
            job.begin()
            result = self._start_result(job, req.command_id)
            result.warnings = [f"{g.gate}: {g.reason}" for g in gates if g.warning]
            return self._remember(req.command_id, result)

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

    def arm_clip(self, session_id: str, file_name: str) -> RecordingJob:
        """Arm a recording that starts now and writes no manifest (the self-test's clip)."""
        return self._arm(
            session_id,
            time.time_ns(),
            None,
            owner="self-test",
            manifest_wanted=False,
            file_name=file_name,
        )

    # -- stills ------------------------------------------------------------------------------

    def lockview(self, session_id: str) -> LockViewResult:
        """Save the framing still of ``session_id`` and reference it in its manifest."""
        job = self.job
        active = job is not None and not job.done_event.is_set()
        if active and job is not None and job.session_id != session_id:
            raise RecordingConflict(
                f"this node is recording session {job.session_id}, not {session_id}"
            )
        if active and job is not None and job.latest is not None:
            frame, captured, source = job.latest.frame, job.latest.capture_ns, "stream"
        elif active and job is not None:  # armed: the camera is open and idle until start_at
            frame, captured, source = job.backend.still(), time.time_ns(), "camera"
        else:
            frame, captured, source = self._capture_still("lock view"), time.time_ns(), "camera"
        path = self.directory / lockview_name(session_id, self.identity.cam_id)
        size = save_jpeg(path, frame, self.camera.jpeg_quality)
        manifest_path = self.directory / manifest_name(session_id, self.identity.cam_id)
        if manifest_path.exists():  # taken after the stop: the manifest learns of it now
            manifest = read_manifest(manifest_path)
            write_manifest(self.directory, manifest.model_copy(update={"lockview_file": path.name}))
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
        job = self.job
        if job is not None and not job.done_event.is_set() and job.latest is not None:
            return encode_jpeg(job.latest.frame, self.camera.jpeg_quality)
        cached = self._preview_cache
        if cached is not None and time.monotonic() - cached[0] < 1.0:
            return cached[1]
        try:
            data = encode_jpeg(self._capture_still("preview"), self.camera.jpeg_quality)
        except CameraBusy:
            if self.preview_fallback is not None and (still := self.preview_fallback()):
                return still
            raise
        self._preview_cache = (time.monotonic(), data)
        return data

    def _capture_still(self, owner: str) -> av.VideoFrame:
        """Open the camera under its lock, take one frame, close it."""
        profile = self.profiles.current
        with self.lock.held(owner):
            try:
                backend = make_backend(
                    self.camera.source,
                    profile.width,
                    profile.height,
                    profile.fps,
                    self.identity.cam_id,
                    device=self.camera.device,
                )
                backend.open()
            except CameraError as err:
                raise RecorderFailure(f"camera: {err}") from err
            try:
                return backend.still()
            finally:
                backend.close()

    # -- gates and profiles -----------------------------------------------------------------

    def check_gates(self, planned_s: float | None) -> list[GateResult]:
        """Storage, temperature, battery and clock (the camera is checked when it opens)."""
        g = self.gates
        bitrate = self.profiles.bitrate(self.profiles.current)
        directory = self.directory
        return [
            storage_gate(
                check_writable(directory),
                _free_bytes(directory) if directory.exists() else 0,
                bitrate,
                planned_s,
                self.storage.min_free_minutes,
                self.storage.reserve_s,
            ),
            temperature_gate(
                read_temperature_c(g.thermal_path), g.max_cpu_temp_c, str(g.thermal_path)
            ),
            battery_gate(None, g.min_battery_percent, "none"),
            clock_gate(self.clock.latest, g.max_clock_offset_ms, g.require_clock_sync),
        ]

    def warm_up(self) -> str:
        """Find the first profile whose encoder opens, and load it once (the first start
        then does not pay for it). Returns the encoder's name."""
        while True:
            profile = self.profiles.current
            try:
                return warm_up_encoder(
                    profile, self.profiles.bitrate(profile), self.camera.encoder_options
                )
            except EncoderUnavailable as err:
                if not self.profiles.fall_back(str(err)):
                    raise

    def _probation_failed(self, profile: Profile, reason: str) -> None:
        with self._lock:
            if profile == self.profiles.current:
                self.profiles.fall_back(f"{reason}; the next recording uses the next profile")

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
        profile = active.profile if active else self.profiles.current
        bitrate = active.bitrate_bps if active else self.profiles.bitrate(profile)
        return RecorderStatus(
            state=state,
            session_id=active.session_id if active else None,
            file_name=active.path.name if active else None,
            start_at_ns=active.start_at_ns if active else None,
            first_frame_ns=active.first_frame_ns if active else None,
            frames=active.frames if active else 0,
            dropped_frames=active.dropped_frames if active else 0,
            encode_fps=active.encode_fps if active else 0.0,
            codec=profile.codec,
            width=profile.width,
            height=profile.height,
            fps=profile.fps,
            bitrate_bps=bitrate,
            profile=profile.name,
            profile_notes=list(self.profiles.notes),
            camera=self.camera_description,
            camera_busy=self.lock.owner,
            last_error=self.last_error,
            last_stop_reason=self.last_stop_reason,
        )

    # -- internals --------------------------------------------------------------------------

    def _arm(
        self,
        session_id: str,
        start_at_ns: int,
        requested_ns: int | None,
        owner: str,
        manifest_wanted: bool = True,
        file_name: str | None = None,
    ) -> RecordingJob:
        """Take the camera, open the first profile's encoder that works, open the camera."""
        self.lock.acquire(f"{owner} {session_id}")
        try:
            return self._arm_locked(
                session_id, start_at_ns, requested_ns, manifest_wanted, file_name
            )
        except BaseException:
            self.lock.release()
            raise

    def _arm_locked(
        self,
        session_id: str,
        start_at_ns: int,
        requested_ns: int | None,
        manifest_wanted: bool,
        file_name: str | None,
    ) -> RecordingJob:
        cam = self.camera
        name = file_name or recording_name(session_id, self.identity.cam_id, start_at_ns)
        path = self.directory / name
        while True:
            profile = self.profiles.current
            bitrate = self.profiles.bitrate(profile)
            try:
                writer = Mp4Writer(
                    path,
                    profile,
                    bitrate,
                    gop_frames=max(1, round(profile.fps * cam.gop_s)),
                    extra_options=cam.encoder_options,
                )
                break
            except FileExistsError as err:
                raise RecordingConflict(f"{path.name} already exists on this node") from err
            except OSError as err:
                raise GateRefused(
                    [GateResult(gate="storage", ok=False, reason=f"cannot create {name}: {err}")]
                ) from err
            except EncoderUnavailable as err:
                if not self.profiles.fall_back(str(err)):
                    self.last_error = str(err)
                    raise RecorderFailure(f"no configured profile can be encoded: {err}") from err
        try:
            backend = make_backend(
                cam.source,
                profile.width,
                profile.height,
                profile.fps,
                self.identity.cam_id,
                device=cam.device,
            )
            backend.open()
        except CameraError as err:
            writer.close()
            path.unlink(missing_ok=True)
            self.last_error = f"camera: {err}"
            raise GateRefused([GateResult(gate="camera", ok=False, reason=str(err))]) from err
        job = RecordingJob(
            session_id=session_id,
            start_at_ns=start_at_ns,
            requested_start_ns=requested_ns,
            path=path,
            profile=profile,
            bitrate_bps=bitrate,
            profile_notes=list(self.profiles.notes),
            camera=cam,
            storage=self.storage,
            backend=backend,
            writer=writer,
            clock=self.clock,
            identity=self.identity,
            on_probation_failed=self._probation_failed,
            on_done=lambda: self._job_done(job),
            manifest_wanted=manifest_wanted,
        )
        # The journal is written by the recording thread with the first frame: before it
        # the file holds no footage, and the arm path stays free of fsyncs.
        return job

    def _job_done(self, job: RecordingJob) -> None:
        """Called by the job's thread as it ends: the camera is free, and how the recording
        ended is remembered for the status page."""
        self.lock.release()
        if job.manifest_wanted and not job.cancelled:
            self.last_stop_reason = job.stop_reason
            if job.error:
                self.last_error = job.error

    def _start_result(self, job: RecordingJob, command_id: str) -> StartResult:
        state = RecorderState.recording if job.started_event.is_set() else RecorderState.armed
        return StartResult(
            session_id=job.session_id,
            command_id=command_id,
            state=state,
            file_name=job.path.name,
            start_at_ns=job.start_at_ns,
            scheduled=job.requested_start_ns is not None,
            armed_at_ns=job.armed_at_ns,
            profile=job.profile.name,
        )

    def _remember(self, command_id: str, result: _R) -> _R:
        self._commands[command_id] = result
        while len(self._commands) > _MAX_REMEMBERED_COMMANDS:
            self._commands.popitem(last=False)
        return result
