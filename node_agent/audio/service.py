"""The node's audio: the start beep, Lock View's tone, the degraded-state watcher, the
audio toggle and the audio part of the status."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from node_agent.audio.degraded import DegradedWatcher, degraded_states
from node_agent.audio.overrides import save_audio
from node_agent.audio.player import TonePlayer
from node_agent.audio.schemas import (
    AudioStatus,
    AudioToggle,
    AudioToggleResult,
    ToneKind,
)
from node_agent.errors import RecordingConflict
from node_agent.recorder.service import Recorder
from node_agent.schemas import BeepRequest, BeepResult, NodeStatus, RecorderState
from node_agent.settings import AgentSettings
from node_agent.sync.fleettime import to_local_ns
from node_agent.telemetry.chrony import ClockMonitor
from node_agent.telemetry.thermal import read_temperature_c

log = logging.getLogger(__name__)

_MAX_REMEMBERED = 256
WATCH_INTERVAL_S = 1.0


class NodeAudio:
    """Tones and the audio track setting of one node."""

    def __init__(
        self,
        settings: AgentSettings,
        player: TonePlayer,
        recorder: Recorder,
        clock: ClockMonitor,
        watcher: DegradedWatcher | None = None,
    ) -> None:
        self.settings = settings
        self.player = player
        self.recorder = recorder
        self.clock = clock
        self.watcher = watcher or DegradedWatcher(settings.audio.degraded_repeat_s)
        self._lock = threading.Lock()
        self._beeps: OrderedDict[str, BeepResult] = OrderedDict()
        self._task: asyncio.Task[None] | None = None

    @property
    def tones(self) -> bool:
        """Whether tones are played at all (audio.tones)."""
        return self.settings.audio.tones

    # -- the start beep ---------------------------------------------------------------------

    def beep(self, req: BeepRequest) -> BeepResult:
        """Schedule the start tone at ``req.at_ns`` (fleet time) and answer at once.

        Only for the session this node is armed for or recording (409 otherwise);
        idempotent by ``command_id``: a repeated command answers as the first did and plays
        nothing more."""
        with self._lock:
            seen = self._beeps.get(req.command_id)
            if seen is not None:
                return seen
            job = self.recorder.active_job()
            state = self.recorder.state
            if (
                job is None
                or job.session_id != req.session_id
                or state not in (RecorderState.armed, RecorderState.recording)
            ):
                now = f"recording session {job.session_id}" if job else state.value
                raise RecordingConflict(
                    f"this node is not armed for session {req.session_id} (it is {now}): "
                    "a start beep follows that session's start"
                )
            local = to_local_ns(
                req.at_ns, self.clock.latest, self.settings.sync.correct_start_by_offset
            )
            result = BeepResult(
                session_id=req.session_id, command_id=req.command_id, scheduled=False, at_ns=local
            )
            if not self.tones:
                result.reason = "tones are off on this node (audio.tones: false)"
            elif local <= self.player.now_ns():
                result.reason = "the start instant has passed: no beep"
            else:
                self.player.play_at(ToneKind.start, local, reason=f"session {req.session_id}")
                result.scheduled = True
            self._beeps[req.command_id] = result
            while len(self._beeps) > _MAX_REMEMBERED:
                self._beeps.popitem(last=False)
            return result

    # -- Lock View and degraded states -------------------------------------------------------

    def lockview_done(self, session_id: str) -> None:
        """A Lock View still was saved: its tone."""
        if self.tones:
            self.player.play_now(ToneKind.lockview, reason=f"session {session_id}")

    def check_degraded(self, status: NodeStatus) -> list[str]:
        """Observe the node's states; play the degraded tone for those just entered."""
        gates = self.settings.gates
        states = degraded_states(status, read_temperature_c(gates.thermal_path), gates)
        due = self.watcher.observe(states)
        if due and self.tones:
            self.player.play_now(ToneKind.degraded, "; ".join(states[d] for d in due))
        return due

    def start(self, status: Callable[[], NodeStatus]) -> None:
        """Watch the status for degraded states every second (off the event loop)."""

        async def loop() -> None:
            while True:
                try:
                    await asyncio.to_thread(lambda: self.check_degraded(status()))
                except Exception:  # a failed look must not end the watching
                    log.exception("degraded-state check failed")
                await asyncio.sleep(WATCH_INTERVAL_S)

        self._task = asyncio.create_task(loop(), name="audio-degraded")

    async def stop(self) -> None:
        """Stop watching; cancel tones still waiting."""
        self.player.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- the audio toggle --------------------------------------------------------------------

    def set_track(self, body: AudioToggle) -> AudioToggleResult:
        """Record an audio track (camera.audio) or not; 409 while a recording is armed or
        running; kept across restarts in the overrides file."""
        with self.recorder.settings_lock():
            state = self.recorder.state
            if state != RecorderState.idle:
                raise RecordingConflict(
                    f"the recorder is {state.value}: stop the recording before changing "
                    "camera.audio"
                )
            save_audio(self.settings.data_dir, body.enabled)
            self.settings.camera.audio = body.enabled
        return AudioToggleResult(enabled=body.enabled, persisted=True)

    # -- status ------------------------------------------------------------------------------

    def status(self) -> AudioStatus:
        """The audio part of the node status."""
        a, cam = self.settings.audio, self.settings.camera
        job = self.recorder.job
        return AudioStatus(
            tones=a.tones,
            device=a.device,
            last_tones=self.player.records()[-5:],
            tones_played=self.player.played(),
            tone_errors=self.player.errors,
            last_error=self.player.last_error,
            degraded=sorted(self.watcher.current),
            track=cam.audio,
            track_device=cam.audio_device,
            track_error=job.writer.audio_note if job is not None else None,
        )
