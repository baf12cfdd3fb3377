"""Tones through ``aplay``: played now, or at a scheduled instant; each one remembered.

``aplay -q [-D device] FILE`` plays a cached WAV (``ToneCache``), spawned through the
agent's ``CommandRunner`` like every other program (its journal, time-out and dry-run
apply). The runner's own cost before the exec was measured on a loaded 2-core machine
against a fake aplay that stamps the time as its first command: 1.6-2.0 ms from the call
to the stamp through the runner against 1.56 ms for a bare ``subprocess.Popen`` (median of
40; p95 1.9-2.2 ms against 1.8 ms), so the runner adds 0.1-0.4 ms.

A scheduled tone is not waited for in this process: at the start instant the recording
thread starts encoding here and holds the GIL, which made a tone thread up to 12 ms late.
Shortly before the instant (``PRESPAWN_NS``) the runner starts ``node_agent.audio.at``,
which waits with ``wait_until_ns`` (sleep, then spin, SCHED_FIFO when allowed) in its own
process, prints the instant it fired and execs aplay. A real sound card adds its own
output latency (ALSA's buffer, a few ms), the same on every node.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path

from node_agent.audio.schemas import ToneKind, ToneRecord
from node_agent.audio.settings import AudioSettings
from node_agent.audio.tone import ToneCache
from node_agent.commands import CommandRunner
from node_agent.recorder.schedule import wait_until_ns

log = logging.getLogger(__name__)

KEEP_TONES = 20
# The waiting process is started this long before the instant (or at once when less is
# left): Python's start-up took 150 ms here at a load of 7 on 2 cores, once over 500 ms.
PRESPAWN_NS = 2_000_000_000


def aplay_argv(settings: AudioSettings, path: Path) -> list[str]:
    """``aplay -q [-D device] FILE``."""
    argv = [settings.aplay_path, "-q"]
    if settings.device:
        argv += ["-D", settings.device]
    return [*argv, str(path)]


class TonePlayer:
    """Plays the node's tones; remembers the last ones and counts them per kind."""

    def __init__(
        self,
        settings: AudioSettings,
        cache: ToneCache,
        runner: CommandRunner,
        time_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.runner = runner
        self._time_ns = time_ns
        self._lock = threading.Lock()
        self._records: deque[ToneRecord] = deque(maxlen=KEEP_TONES)
        self._played: Counter[str] = Counter()
        self.errors = 0
        self.last_error: str | None = None
        self._cancel = threading.Event()

    def now_ns(self) -> int:
        """The wall clock the player schedules on."""
        return self._time_ns()

    def tone_path(self, kind: ToneKind) -> Path:
        """The cached WAV of ``kind``'s tone."""
        s = self.settings
        hz, ms = {
            ToneKind.start: (s.start_tone_hz, s.start_tone_ms),
            ToneKind.lockview: (s.lockview_tone_hz, s.lockview_tone_ms),
            ToneKind.degraded: (s.degraded_tone_hz, s.degraded_tone_ms),
        }[kind]
        return self.cache.path(hz, ms, s.volume)

    def play_at(self, kind: ToneKind, at_ns: int, reason: str | None = None) -> ToneRecord:
        """Schedule ``kind``'s tone at the local instant ``at_ns`` (now when it has passed);
        answers at once with the record, which fills in when the tone has played."""
        record = ToneRecord(
            kind=kind,
            reason=reason,
            requested_at_ns=self._time_ns(),
            at_ns=at_ns,
            device=self.settings.device,
        )
        try:
            path = self.tone_path(kind)  # generated here, so the instant only spawns aplay
        except OSError as err:
            self._finish(record, None, f"cannot write the tone: {err}")
            return record
        with self._lock:
            self._records.append(record)
        threading.Thread(
            target=self._play, args=(record, path), name=f"tone-{kind.value}", daemon=True
        ).start()
        return record

    def play_now(self, kind: ToneKind, reason: str | None = None) -> ToneRecord:
        """Play ``kind``'s tone at once (in the background)."""
        return self.play_at(kind, self._time_ns(), reason)

    def _play(self, record: ToneRecord, path: Path) -> None:
        s = self.settings
        argv = aplay_argv(s, path)
        timeout_s = s.start_tone_ms / 1000 + 10
        if record.at_ns - self._time_ns() > 0:
            if wait_until_ns(record.at_ns - PRESPAWN_NS, self._cancel) is None:
                self._finish(record, None, "cancelled: the agent is stopping")
                return
            at = [sys.executable, "-m", "node_agent.audio.at", str(record.at_ns)]
            done = self.runner.run([*at, *argv], timeout_s=timeout_s + PRESPAWN_NS / 1e9)
            first = done.stdout.split("\n", 1)[0].strip()
            record.played_at_ns = int(first) if first.isdigit() else None
        else:
            record.played_at_ns = self._time_ns()
            done = self.runner.run(argv, timeout_s=timeout_s)
        self._finish(record, done.returncode, None if done.ok else done.describe())

    def _finish(self, record: ToneRecord, code: int | None, error: str | None) -> None:
        with self._lock:
            record.exit_code = code
            record.error = error
            if record not in self._records:
                self._records.append(record)
            if record.played_at_ns is not None:
                self._played[record.kind.value] += 1
            if error is not None:
                self.errors += 1
                self.last_error = f"{record.kind.value} tone: {error}"
                log.warning("%s", self.last_error)

    def records(self) -> list[ToneRecord]:
        """The last tones, oldest first (copies)."""
        with self._lock:
            return [r.model_copy() for r in self._records]

    def played(self) -> dict[str, int]:
        """Tones spawned per kind since the start."""
        with self._lock:
            return {k.value: self._played[k.value] for k in ToneKind}

    def close(self) -> None:
        """Cancel tones still waiting for their instant."""
        self._cancel.set()
