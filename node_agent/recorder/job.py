"""``RecordingJob``: the loop that runs one armed recording in its own thread.

It waits for the start instant, reads frames, and applies the pure policies
(``policies``) to what it reads: timestamps and drops, the encode rate, probation
and the disk reserve. What it counted goes to ``RecordingCounters``; on the way out it
closes the file and writes the manifest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from node_agent.camera.framesync import FrameSyncing, unsupported
from node_agent.camera.protocol import CameraBackend, CapturedFrame
from node_agent.clock import Clock
from node_agent.naming import journal_path, lockview_name
from node_agent.recorder.counters import RecordingCounters, measured_bitrate_bps
from node_agent.recorder.deadline import bound_at_ns
from node_agent.recorder.keeper import StorageKeeper
from node_agent.recorder.manifest import write_manifest
from node_agent.recorder.policies import (
    NS_PER_S,
    FrameTimeline,
    RateWindow,
    probation_verdict,
    reserve_bytes,
    reserve_reached,
)
from node_agent.recorder.recovery import write_journal
from node_agent.recorder.schedule import Fired, wait_until_ns
from node_agent.recorder.spec import RecordingSpec
from node_agent.recorder.writer import Mp4Writer
from node_agent.schemas import ClockStatus, Manifest, RecorderState, StartResult
from node_agent.settings import CameraSettings, Profile, StorageSettings
from node_agent.telemetry.disk import free_bytes

log = logging.getLogger(__name__)


class RecordingJob:
    """One recording: armed, then running in its own thread until stopped."""

    def __init__(
        self,
        spec: RecordingSpec,
        *,
        camera: CameraSettings,
        storage: StorageSettings,
        backend: CameraBackend,
        writer: Mp4Writer,
        clock: Clock,
        clock_status: Callable[[], ClockStatus],
        on_probation_failed: Callable[[Profile, str], None] | None = None,
        on_done: Callable[[RecordingJob], None] | None = None,
        disk_free: Callable[[Path], int] = free_bytes,
        keeper: StorageKeeper | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.spec = spec
        self.counters = RecordingCounters()
        self.camera = camera
        self.storage = storage
        self.backend = backend
        self.writer = writer
        self.clock = clock
        self._clock_status = clock_status
        self._on_probation_failed = on_probation_failed
        self._on_done = on_done  # frees the camera, notes how it ended
        self._disk_free = disk_free
        self._keeper = keeper  # asked to free offloaded footage before the reserve stops us
        # told when the state moves (first frame, stop asked, finished): the status stream
        self._on_change = on_change or (lambda: None)
        self.stop_event = threading.Event()
        self.started_event = threading.Event()
        self.done_event = threading.Event()
        self.latest: CapturedFrame | None = None
        self.manifest: Manifest | None = None
        self.thread: threading.Thread | None = None

    @property
    def session_id(self) -> str:
        """The session this recording belongs to."""
        return self.spec.session_id

    @property
    def path(self) -> Path:
        """The recording's file."""
        return self.spec.path

    @property
    def active(self) -> bool:
        """Armed or running: its thread has not finished."""
        return not self.done_event.is_set()

    def measured_bitrate_bps(self) -> int | None:
        """What the file has grown by per second since the first frame."""
        return measured_bitrate_bps(
            self.writer.sink.size_bytes, self.counters.first_frame_ns, self.clock.time_ns()
        )

    def begin(self) -> None:
        """Start the recording thread (it waits for ``start_at_ns`` first)."""
        self.thread = threading.Thread(
            target=self._run, name=f"recorder-{self.spec.session_id}", daemon=True
        )
        self.thread.start()

    def stop(self, reason: str | None = None) -> None:
        """Ask the thread to end (a cancel while armed); it finishes on its own."""
        if reason is not None:
            self.counters.stop_reason = reason
        self.stop_event.set()
        self._on_change()

    def _run(self) -> None:
        c = self.counters
        try:
            c.start_late_ns = self.spec.late_ns
            self._await_frame_sync()
            # The start instant is waited for on the real clocks: its precision is the point.
            fired = wait_until_ns(self.spec.start_at_ns, self.stop_event)
            if fired is None:
                c.cancelled = True
                return
            self._capture(fired)
        except Exception as err:  # the camera, encoder or disk failed mid-recording
            log.exception("recording %s failed", self.spec.session_id)
            c.failed(f"{type(err).__name__}: {err}")
        finally:
            try:
                self._finish()
            finally:
                if self._on_done is not None:
                    self._on_done(self)
                self.done_event.set()
                self._on_change()
                if self._keeper is not None:
                    self._keeper.request_refresh()  # a new manifest, a file no longer active

    def _await_frame_sync(self) -> None:
        """With camera.frame_sync on, wait for libcamera's SyncReady before the start
        instant; a start that comes first waits for it, up to frame_sync_timeout_s from
        arming, and the delay shows as lateness. Every outcome goes in the manifest."""
        spec, c = self.spec, self.counters
        if spec.frame_sync == "off":
            return
        if not isinstance(self.backend, FrameSyncing):
            c.frame_sync = unsupported(spec.frame_sync, self.backend.name)
            return
        until = max(spec.start_at_ns, spec.armed_at_ns + round(spec.frame_sync_timeout_s * 1e9))
        c.frame_sync = self.backend.await_frame_sync(until, self.stop_event)
        now = self.clock.time_ns()
        if spec.deadline_ns is not None and spec.requested_start_ns is not None:
            c.start_late_ns = max(c.start_late_ns, now - spec.deadline_ns, 0)
        if not c.frame_sync.ready:
            log.warning("recording %s: frame sync: %s", spec.session_id, c.frame_sync.error)

    def _capture(self, fired: Fired) -> None:
        spec, c, cam = self.spec, self.counters, self.camera
        c.clock_at_start = self._clock_status()
        c.clock_bound_ns = bound_at_ns(c.clock_at_start, fired.wall_ns)
        c.realtime_start = fired.realtime
        self.backend.begin(fired.wall_ns, fired.monotonic_ns)
        timeline = FrameTimeline(spec.profile.fps)
        rate = RateWindow(self.clock.monotonic_ns())
        syncer = threading.Thread(target=self._sync_loop, name="recorder-fsync", daemon=True)
        probation_end: int | None = None
        next_disk_check = 0
        while True:
            got = self.backend.read(cam.frame_timeout_s, self.stop_event)
            if got is None:
                break
            if got.capture_ns < spec.start_at_ns:
                continue  # a streaming camera's frames from before the start instant
            first = c.first_frame_ns is None
            if first:
                c.first_frame_ns = got.capture_ns
                c.first_frame_source = got.source
                probation_end = self.clock.monotonic_ns() + round(cam.probation_s * NS_PER_S)
            pts = timeline.place(got.capture_ns)
            c.dropped_frames = timeline.dropped
            if first:
                self.writer.begin_audio(got.capture_ns)  # sample 0 of the audio track
            self.writer.write(got.frame, pts)
            if first:
                self.started_event.set()
                self._on_change()
                if spec.manifest_wanted:  # the first frame is on its way
                    write_journal(spec.path, spec.journal(c))
                syncer.start()
            self.latest = got
            c.frames += 1
            c.last_frame_ns = got.capture_ns
            now = self.clock.monotonic_ns()
            if (fps := rate.tick(now)) is not None:
                c.encode_fps = fps
            if probation_end is not None and now >= probation_end:
                probation_end = None
                self._judge_probation()
            if now >= next_disk_check:
                next_disk_check = now + NS_PER_S
                reserve_s = self.storage.reserve_s
                why = reserve_reached(
                    self._disk_free(spec.path.parent), reserve_s, spec.bitrate_bps
                )
                if why is not None and self._keeper is not None:
                    # Retention deletes offloaded footage first; only when nothing offloaded
                    # is left does the recording stop (never deleting unconfirmed footage).
                    why = self._keeper.make_room(reserve_bytes(reserve_s, spec.bitrate_bps), why)
                if why is not None:
                    c.stop_reason = why
                    log.error("recording %s stopped: %s", spec.session_id, why)
                    break

    def _judge_probation(self) -> None:
        c, profile = self.counters, self.spec.profile
        verdict = probation_verdict(
            c.frames,
            c.dropped_frames,
            self.camera.max_drop_ratio,
            self.camera.probation_s,
            c.encode_fps,
            profile.fps,
        )
        if verdict is not None and self._on_probation_failed is not None:
            self._on_probation_failed(profile, verdict)

    def _sync_loop(self) -> None:
        # fdatasync once a second so the stop (and a power cut) has little left to flush.
        while not self.done_event.wait(1.0) and not self.stop_event.is_set():
            try:
                self.writer.sink.sync()
            except (OSError, ValueError):
                return

    def _finish(self) -> None:
        spec, c = self.spec, self.counters
        try:
            c.size_bytes, c.sha256 = self.writer.close()
        except Exception as err:
            log.exception("closing %s failed", spec.path)
            c.failed(f"closing the file failed: {err}")
            # The hash still covers every byte that reached the file.
            c.size_bytes, c.sha256 = self.writer.sink.size_bytes, self.writer.sink.close()
        finally:
            self.backend.close()
        if c.cancelled or c.first_frame_ns is None:
            spec.path.unlink(missing_ok=True)
            journal_path(spec.path).unlink(missing_ok=True)
            return
        if not spec.manifest_wanted:
            return
        self.manifest = self.build_manifest()
        write_manifest(spec.path.parent, self.manifest)
        journal_path(spec.path).unlink(missing_ok=True)

    def build_manifest(self) -> Manifest:
        """The manifest of the finished recording."""
        spec, c = self.spec, self.counters
        assert c.first_frame_ns is not None
        lockview = spec.path.parent / lockview_name(spec.session_id, spec.identity.cam_id)
        manifest = spec.journal(c).manifest(
            file_name=spec.path.name,
            first_frame_ns=c.first_frame_ns,
            duration_s=c.duration_s(spec.profile.fps),
            frame_count=c.frames,
            dropped_frames=c.dropped_frames,
            size_bytes=c.size_bytes,
            sha256=c.sha256,
            stop_reason=c.stop_reason,
            lockview_file=lockview.name if lockview.exists() else None,
        )
        manifest.audio_track = self.writer.audio is not None
        manifest.audio_note = self.writer.audio_note
        return manifest


def start_result(job: RecordingJob, command_id: str) -> StartResult:
    """What a start command answers about the recording it armed."""
    spec = job.spec
    state = RecorderState.recording if job.started_event.is_set() else RecorderState.armed
    return StartResult(
        session_id=spec.session_id,
        command_id=command_id,
        state=state,
        file_name=spec.path.name,
        start_at_ns=spec.start_at_ns,
        scheduled=spec.requested_start_ns is not None,
        armed_at_ns=spec.armed_at_ns,
        profile=spec.profile.name,
        late_ns=spec.late_ns,
    )
