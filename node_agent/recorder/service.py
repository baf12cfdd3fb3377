"""The recorder: one recording at a time, gated, armed for a scheduled start, hashed while
written, journaled so that a crash leaves nothing without a manifest.

One lock covers start, stop and the command cache. A start holds it while it arms
(opens the encoder and the camera), so a stop that arrives meanwhile waits for the
arming to finish and then stops that very recording instead of answering "not found".
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from node_agent.camera.factory import make_backend
from node_agent.camera.framesync import ready_frames, resolve_mode
from node_agent.camera.lock import CameraLock
from node_agent.camera.protocol import BackendFactory
from node_agent.camera.survey import describe_cameras
from node_agent.clock import Clock, SystemClock
from node_agent.errors import GateRefused, NotFound, RecordingConflict
from node_agent.naming import manifest_name, recording_name
from node_agent.recorder.arming import ArmingFailed, open_camera, open_writer
from node_agent.recorder.counters import RecordingCounters
from node_agent.recorder.deadline import StartPlan, late_warning, plan_start
from node_agent.recorder.gates import check_gates
from node_agent.recorder.job import RecordingJob, start_result
from node_agent.recorder.keeper import StorageKeeper
from node_agent.recorder.manifest import read_manifest
from node_agent.recorder.profiles import Profiles
from node_agent.recorder.spec import Identity, RecordingSpec
from node_agent.recorder.stills import RecorderStills
from node_agent.recorder.writer import EncoderUnavailable, warm_up_encoder
from node_agent.schemas import (
    GateResult,
    LockViewResult,
    Manifest,
    RecorderState,
    RecorderStatus,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
)
from node_agent.settings import CameraSettings, GateSettings, Profile, StorageSettings
from node_agent.sync.settings import SyncSettings
from node_agent.telemetry.chrony import ClockMonitor

log = logging.getLogger(__name__)

_MAX_REMEMBERED_COMMANDS = 1024
_R = TypeVar("_R", StartResult, StopResult)


class Recorder:
    """Owns the camera for recordings: gates, starts, stops, remembers commands by id."""

    def __init__(
        self,
        directory: Path,
        camera: CameraSettings,
        identity: Identity,
        chrony: ClockMonitor,
        lock: CameraLock,
        storage: StorageSettings | None = None,
        gates: GateSettings | None = None,
        max_schedule_ahead_s: float = 300.0,
        *,
        clock: Clock | None = None,
        backend_factory: BackendFactory = make_backend,
        preview_fallback: Callable[[], bytes | None] | None = None,
        keeper: StorageKeeper | None = None,
        battery: Callable[[], GateResult] | None = None,
        sync: SyncSettings | None = None,
    ) -> None:
        self.directory = directory
        self.sync = sync or SyncSettings()
        self.battery = battery  # the power monitor's gate; None: mains assumed
        self.keeper = keeper  # retention before a start is refused or a recording stops
        self.camera = camera
        self.storage = storage or StorageSettings()
        self.gates = gates or GateSettings()
        self.identity = identity
        self.chrony = chrony
        self.lock = lock
        # Called (from any thread) when the recorder's state moves; the status stream's poke.
        self.on_change: Callable[[], None] = lambda: None
        # Told how each recording ended, and each start the camera or encoder refused
        # (the notifications count a camera's failures in a row).
        self.on_finished: Callable[[RecordingCounters], None] = lambda _c: None
        self.on_arm_failed: Callable[[str], None] = lambda _note: None
        self.clock: Clock = clock or SystemClock()
        self.max_schedule_ahead_s = max_schedule_ahead_s
        self.profiles = Profiles(camera)
        self.job: RecordingJob | None = None
        self.last_error: str | None = None
        self.last_stop_reason: str | None = None
        self.camera_description = camera.source
        self._factory = backend_factory
        self._lock = threading.Lock()  # start, stop and the command cache
        self._commands: OrderedDict[str, StartResult | StopResult] = OrderedDict()
        self.stills = RecorderStills(
            directory,
            camera,
            identity,
            lock,
            self.profiles,
            self.active_job,
            self.clock,
            backend_factory,
            preview_fallback,
        )

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
            job = self.active_job()
            if job is not None:
                if job.session_id == req.session_id:
                    return self._remember(req.command_id, start_result(job, req.command_id))
                raise RecordingConflict(
                    f"this node is already recording session {job.session_id}; "
                    f"stop it before starting {req.session_id}"
                )
            if (self.directory / manifest_name(req.session_id, self.identity.cam_id)).exists():
                raise RecordingConflict(
                    f"session {req.session_id} was already recorded on this node; "
                    "start a new session"
                )
            now = self.clock.time_ns()
            # start_at_ns is fleet time: the deadline is this clock's reading at that instant.
            # One that has already passed (the command came late) starts at once, and the
            # answer and the manifest say how late.
            plan = plan_start(
                req.start_at_ns, now, self.chrony.latest, self.sync.correct_start_by_offset
            )
            start_at = plan.start_at_ns
            if start_at - now > self.max_schedule_ahead_s * 1e9:
                raise RecordingConflict(
                    f"start_at_ns is {(start_at - now) / 1e9:.0f} s ahead; this node accepts at "
                    f"most {self.max_schedule_ahead_s:.0f} s (check the coordinator's clock)"
                )
            gates = self.check_gates(req.planned_duration_s)
            refused = [g for g in gates if not g.ok]
            if refused:
                raise GateRefused(refused)
            job = self._arm(req.session_id, start_at, req.start_at_ns, "recording", plan=plan)
            self.job = job
            job.begin()
            result = start_result(job, req.command_id)
            result.warnings = [f"{g.gate}: {g.reason}" for g in gates if g.warning]
            if result.late_ns:
                log.warning("session %s: %s", req.session_id, late_warning(result.late_ns))
                result.warnings.append(late_warning(result.late_ns))
            return self._remember(req.command_id, result)

    async def stop(self, req: StopRequest) -> StopResult:
        """Stop the session's recording and return its manifest; idempotent.

        Taking the lock waits for a start that is still arming, so its recording is
        the one stopped (off the event loop: arming may take seconds).
        """
        found = await asyncio.to_thread(self._begin_stop, req)
        if isinstance(found, StopResult):
            return found
        await asyncio.to_thread(found.done_event.wait)
        result = StopResult(
            session_id=req.session_id,
            command_id=req.command_id,
            state="cancelled" if found.counters.cancelled else "stopped",
            manifest=found.manifest,
        )
        with self._lock:
            return self._remember(req.command_id, result)

    def _begin_stop(self, req: StopRequest) -> StopResult | RecordingJob:
        """Under the lock: the remembered answer, or the job now told to stop."""
        with self._lock:
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
            job.stop()
            return job

    def shutdown(self, timeout_s: float = 10.0, reason: str = "agent shutdown") -> Manifest | None:
        """Finish whatever is recording (the agent is exiting, or the battery is running
        out: ``reason`` goes in the manifest's stop reason); returns its manifest."""
        with self._lock:
            job = self.active_job()
            if job is None:
                return None
            job.stop(reason)
        job.done_event.wait(timeout_s)
        return job.manifest

    def arm_clip(self, session_id: str, file_name: str) -> RecordingJob:
        """Arm a recording that starts now and writes no manifest (the self-test's clip)."""
        return self._arm(
            session_id,
            self.clock.time_ns(),
            None,
            owner="self-test",
            manifest_wanted=False,
            file_name=file_name,
        )

    def settings_lock(self) -> threading.Lock:
        """The lock a start holds while it arms: a settings change made under it (the audio
        toggle) cannot race a start."""
        return self._lock

    def active_job(self) -> RecordingJob | None:
        """The recording that is armed or running, if any."""
        job = self.job
        return job if job is not None and job.active else None

    # -- stills ------------------------------------------------------------------------------

    def lockview(self, session_id: str) -> LockViewResult:
        """Save the framing still of ``session_id`` and reference it in its manifest."""
        return self.stills.lockview(session_id)

    def preview_jpeg(self) -> bytes:
        """A recent still, never waiting for the camera (see ``RecorderStills``)."""
        return self.stills.preview_jpeg()

    # -- what the agent tells the recorder at boot ------------------------------------------

    def note_recovered(self, manifests: list[Manifest]) -> None:
        """Recordings a crash left were given manifests at boot: say so on the status page."""
        if manifests:
            self.last_error = f"recovered {len(manifests)} interrupted recording(s): " + ", ".join(
                m.file_name for m in manifests
            )

    def probe_camera(self) -> str:
        """Look for the configured camera without opening it; the status page shows it."""
        self.camera_description = describe_cameras(self.camera.source, self.camera.device)
        return self.camera_description

    # -- gates and profiles -----------------------------------------------------------------

    def check_gates(self, planned_s: float | None) -> list[GateResult]:
        """Storage, temperature, battery and clock (the camera is checked when it opens)."""
        return check_gates(
            self.directory,
            self.profiles.bitrate(self.profiles.current),
            planned_s,
            self.storage,
            self.gates,
            self.chrony.latest,
            self.keeper,
            self.battery() if self.battery is not None else None,
            self.sync.correct_start_by_offset,
        )

    def warm_up(self) -> str:
        """Find the first profile whose encoder opens, and load it once (the first start
        then does not pay for it). Returns the encoder's name; EncoderUnavailable (also
        kept as the last error) when none opens."""
        while True:
            profile = self.profiles.current
            try:
                return warm_up_encoder(
                    profile, self.profiles.bitrate(profile), self.camera.encoder_options
                )
            except EncoderUnavailable as err:
                if not self.profiles.fall_back(str(err)):
                    self.last_error = str(err)
                    raise

    def _probation_failed(self, profile: Profile, reason: str) -> None:
        with self._lock:
            if profile == self.profiles.current:
                self.profiles.fall_back(f"{reason}; the next recording uses the next profile")

    # -- state ------------------------------------------------------------------------------

    @property
    def state(self) -> RecorderState:
        """idle, armed, recording or stopping."""
        job = self.active_job()
        if job is None:
            return RecorderState.idle
        if job.stop_event.is_set():
            return RecorderState.stopping
        if not job.started_event.is_set():
            return RecorderState.armed
        return RecorderState.recording

    def status(self) -> RecorderStatus:
        """The recorder's part of the node status."""
        job = self.active_job()
        state = self.state
        active = job if job is not None and state != RecorderState.idle else None
        spec, c = (active.spec, active.counters) if active else (None, None)
        profile = spec.profile if spec else self.profiles.current
        return RecorderStatus(
            state=state,
            session_id=spec.session_id if spec else None,
            file_name=spec.path.name if spec else None,
            start_at_ns=spec.start_at_ns if spec else None,
            first_frame_ns=c.first_frame_ns if c else None,
            frames=c.frames if c else 0,
            dropped_frames=c.dropped_frames if c else 0,
            encode_fps=c.encode_fps if c else 0.0,
            codec=profile.codec,
            width=profile.width,
            height=profile.height,
            fps=profile.fps,
            bitrate_bps=spec.bitrate_bps if spec else self.profiles.bitrate(profile),
            measured_bitrate_bps=active.measured_bitrate_bps() if active else None,
            profile=profile.name,
            profile_notes=list(self.profiles.notes),
            camera=self.camera_description,
            camera_busy=self.lock.owner,
            last_error=self.last_error,
            last_stop_reason=self.last_stop_reason,
            start_late_ns=c.start_late_ns if c else 0,
            frame_sync=c.frame_sync if c else None,
        )

    # -- arming -----------------------------------------------------------------------------

    def _arm(
        self,
        session_id: str,
        start_at_ns: int,
        requested_ns: int | None,
        owner: str,
        manifest_wanted: bool = True,
        file_name: str | None = None,
        plan: StartPlan | None = None,
    ) -> RecordingJob:
        """Take the camera, open the first profile's encoder that works, open the camera."""
        self.lock.acquire(f"{owner} {session_id}")
        try:
            return self._arm_locked(
                session_id, start_at_ns, requested_ns, manifest_wanted, file_name, plan
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
        plan: StartPlan | None,
    ) -> RecordingJob:
        cam = self.camera
        name = file_name or recording_name(session_id, self.identity.cam_id, start_at_ns)
        path = self.directory / name
        # Self-test clips never wait for frame sync.
        sync_mode = resolve_mode(cam.frame_sync, self.sync, self.identity.cam_id) if plan else "off"
        try:
            profile, bitrate, writer = open_writer(self.profiles, cam, path)
            frames = ready_frames(start_at_ns - self.clock.time_ns(), profile.fps)
            try:
                backend = open_camera(
                    self._factory,
                    cam,
                    profile,
                    self.identity.cam_id,
                    (sync_mode, frames if sync_mode == "server" else None),
                )
            except BaseException:
                writer.close()
                path.unlink(missing_ok=True)
                raise
        except ArmingFailed as err:
            self.last_error = err.note
            self.on_arm_failed(err.note)
            raise
        armed_at = self.clock.time_ns()
        spec = RecordingSpec(
            session_id=session_id,
            start_at_ns=start_at_ns,
            requested_start_ns=requested_ns,
            path=path,
            profile=profile,
            bitrate_bps=bitrate,
            encoder=writer.encoder,
            identity=self.identity,
            armed_at_ns=armed_at,
            profile_notes=list(self.profiles.notes),
            manifest_wanted=manifest_wanted,
            deadline_ns=plan.deadline_ns if plan else None,
            late_ns=plan.late_ns(armed_at) if plan else 0,
            frame_sync=sync_mode,
            frame_sync_timeout_s=cam.frame_sync_timeout_s,
        )
        # The journal is written by the recording thread with the first frame: before it
        # the file holds no footage, and the arm path stays free of fsyncs.
        return RecordingJob(
            spec,
            camera=cam,
            storage=self.storage,
            backend=backend,
            writer=writer,
            clock=self.clock,
            clock_status=lambda: self.chrony.latest,
            on_probation_failed=self._probation_failed,
            on_done=self._job_done,
            keeper=self.keeper,
            on_change=lambda: self.on_change(),
        )

    def _job_done(self, job: RecordingJob) -> None:
        """Called by the job's thread as it ends: the camera is free, and how the recording
        ended is remembered for the status page."""
        self.lock.release()
        c = job.counters
        if job.spec.manifest_wanted and not c.cancelled:
            self.last_stop_reason = c.stop_reason
            if c.error:
                self.last_error = c.error
            self.on_finished(c)

    def _remember(self, command_id: str, result: _R) -> _R:
        self._commands[command_id] = result
        while len(self._commands) > _MAX_REMEMBERED_COMMANDS:
            self._commands.popitem(last=False)
        return result
