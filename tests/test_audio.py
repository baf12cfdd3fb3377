"""Tones: the WAV, the aplay adapter against a fake aplay on PATH, the degraded-state
watcher (time driven, not slept), tones off, the start beep's refusals."""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from node_agent.audio.degraded import DegradedWatcher, degraded_states
from node_agent.audio.player import TonePlayer, aplay_argv
from node_agent.audio.schemas import ToneKind
from node_agent.audio.service import NodeAudio
from node_agent.audio.settings import AudioSettings
from node_agent.audio.tone import ToneCache, tone_wav
from node_agent.commands import CommandRunner
from node_agent.errors import RecordingConflict
from node_agent.power.schemas import PowerLevel, PowerStatus
from node_agent.recorder.service import Recorder
from node_agent.schemas import (
    BeepRequest,
    ClockStatus,
    DiskLevel,
    DiskStatus,
    NodeStatus,
    Position,
    RecorderState,
    RecorderStatus,
    StartRequest,
)
from node_agent.settings import AgentSettings, GateSettings
from node_agent.telemetry.chrony import ClockMonitor
from tests.fakebin import FakeBin
from tests.test_recorder import make_recorder, stop

APLAY_CHECKS_WAV = (
    'f=""; for a in "$@"; do f="$a"; done\n'
    'head -c 4 "$f" | grep -q RIFF || { echo "aplay: $f is not a WAV" >&2; exit 1; }'
)


def wait_for(cond: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def fake_aplay(tmp_path: Path, script: str = APLAY_CHECKS_WAV) -> tuple[FakeBin, AudioSettings]:
    bin_ = FakeBin(tmp_path)
    path = bin_.add("aplay", script=script)
    return bin_, AudioSettings(aplay_path=str(path), device="plughw:1,0")


def test_the_tone_is_a_faded_sine_at_its_volume() -> None:
    data = tone_wav(1000.0, 100, 0.5)
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 48_000)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(float)
    assert pcm.size == 4800
    assert abs(pcm[0]) < 200 and abs(pcm[-1]) < 200  # faded: no click at either end
    assert abs(np.max(np.abs(pcm)) / 32767 - 0.5) < 0.01
    spectrum = np.abs(np.fft.rfft(pcm))
    assert abs(np.argmax(spectrum) * 48_000 / pcm.size - 1000) <= 10


def test_tones_are_cached_per_frequency_length_and_volume(tmp_path: Path) -> None:
    cache = ToneCache(tmp_path / "tones")
    a = cache.path(1000.0, 200, 0.5)
    mtime = a.stat().st_mtime_ns
    assert cache.path(1000.0, 200, 0.5) == a and a.stat().st_mtime_ns == mtime
    assert cache.path(1000.0, 200, 0.6) != a and cache.path(440.0, 200, 0.5) != a
    assert not list((tmp_path / "tones").glob(".*tmp*"))


def test_a_tone_runs_aplay_with_the_device_and_is_recorded(tmp_path: Path) -> None:
    bin_, settings = fake_aplay(tmp_path)
    player = TonePlayer(settings, ToneCache(tmp_path / "tones"), CommandRunner())
    record = player.play_now(ToneKind.lockview, "session S1")
    wait_for(lambda: player.records()[-1].exit_code is not None)
    (call,) = bin_.argvs("aplay")
    assert call[:4] == ["aplay", "-q", "-D", "plughw:1,0"]
    assert call[4].endswith("tone-1500hz-120ms-v050.wav")
    done = player.records()[-1]
    assert done.exit_code == 0 and done.error is None and done.device == "plughw:1,0"
    assert done.requested_at_ns == record.requested_at_ns
    assert player.played() == {"start": 0, "lockview": 1, "degraded": 0}


def test_a_failing_aplay_is_an_error_in_the_record(tmp_path: Path) -> None:
    _, settings = fake_aplay(tmp_path, script="echo 'aplay: main: audio open error' >&2\nexit 1")
    player = TonePlayer(settings, ToneCache(tmp_path / "tones"), CommandRunner())
    player.play_now(ToneKind.degraded)
    wait_for(lambda: player.records()[-1].exit_code is not None)
    done = player.records()[-1]
    assert done.exit_code == 1 and done.error is not None and "audio open error" in done.error
    assert player.errors == 1 and player.last_error is not None


def test_a_scheduled_tone_is_played_at_its_instant(tmp_path: Path) -> None:
    bin_, settings = fake_aplay(tmp_path)
    player = TonePlayer(settings, ToneCache(tmp_path / "tones"), CommandRunner())
    at = time.time_ns() + 1_000_000_000  # the waiting process has time to start
    player.play_at(ToneKind.start, at)
    wait_for(lambda: bin_.calls("aplay"))
    late_ms = (bin_.calls("aplay")[0]["t_ns"] - at) / 1e6
    assert 0 <= late_ms < 30, late_ms
    wait_for(lambda: player.records()[-1].exit_code is not None)
    fired = player.records()[-1].played_at_ns
    assert fired is not None and 0 <= fired - at < 30_000_000  # reported by the waiter


def test_aplay_without_a_device_uses_alsas_default(tmp_path: Path) -> None:
    assert aplay_argv(AudioSettings(), tmp_path / "t.wav") == [
        "aplay",
        "-q",
        str(tmp_path / "t.wav"),
    ]


def status_with(**changes: object) -> NodeStatus:
    base = NodeStatus(
        node_id="n",
        cam_id="CAM_C",
        position=Position.centre,
        hostname="h",
        version="1",
        time_ns=0,
        uptime_s=1.0,
        coordinator="none",
        recorder=RecorderStatus(
            state=RecorderState.idle,
            codec="h264",
            width=1,
            height=1,
            fps=30,
            bitrate_bps=1,
            profile="p",
            camera="synthetic",
        ),
        clock=ClockStatus(
            source="chrony", synchronized=True, offset_ns=1000, error_bound_ns=100_000
        ),
        disk=DiskStatus(path="/", total_bytes=1, free_bytes=1, free_percent=50, minutes_left=9),
    )
    return base.model_copy(update=changes)


def test_degraded_states_cover_temperature_battery_camera_disk_and_clock() -> None:
    gates = GateSettings(max_cpu_temp_c=80, max_clock_error_ms=5)
    assert degraded_states(status_with(), 50.0, gates) == {}
    power = PowerStatus(provider="sysfs", level=PowerLevel.warn, reason="battery at 20 %")
    rec = status_with().recorder.model_copy(update={"last_error": "camera: no camera found"})
    bad = status_with(
        power=power,
        recorder=rec,
        disk=status_with().disk.model_copy(update={"level": DiskLevel.warn}),
        clock=ClockStatus(
            source="chrony", synchronized=True, offset_ns=0, error_bound_ns=7_000_000
        ),
    )
    states = degraded_states(bad, 85.0, gates)
    assert set(states) == {"temperature", "battery", "camera", "disk", "clock"}
    assert "7.00 ms" in states["clock"]
    unsynced = status_with(clock=ClockStatus(source="chrony", synchronized=False, error="no reply"))
    assert "unsynchronized" in degraded_states(unsynced, None, gates)["clock"]


def test_a_degraded_tone_on_entering_a_state_at_most_once_per_repeat_interval() -> None:
    now = [1000.0]
    watcher = DegradedWatcher(repeat_s=60, monotonic=lambda: now[0])
    assert watcher.observe({"disk": "disk warn"}) == ["disk"]
    now[0] += 5
    assert watcher.observe({"disk": "disk warn"}) == []  # staying in it: no tone
    assert watcher.observe({}) == []
    now[0] += 10
    assert watcher.observe({"disk": "disk warn"}) == []  # re-entered within 60 s
    assert watcher.observe({"disk": "x", "clock": "y"}) == ["clock"]  # each state its own
    watcher.observe({})
    now[0] += 60
    assert watcher.observe({"disk": "disk warn"}) == ["disk"]


def agent_audio(tmp_path: Path, tones: bool = True) -> tuple[FakeBin, NodeAudio, Recorder]:
    bin_, audio = fake_aplay(tmp_path)
    audio.tones = tones
    settings = AgentSettings(data_dir=tmp_path / "data", audio=audio, cam_id="CAM_C")
    rec = make_recorder(tmp_path / "rec")
    (tmp_path / "rec").mkdir(exist_ok=True)
    player = TonePlayer(audio, ToneCache(tmp_path / "tones"), CommandRunner())
    return bin_, NodeAudio(settings, player, rec, ClockMonitor("/nonexistent/chronyc")), rec


def test_tones_off_plays_nothing(tmp_path: Path) -> None:
    bin_, audio, rec = agent_audio(tmp_path, tones=False)
    hot = status_with(disk=status_with().disk.model_copy(update={"level": DiskLevel.critical}))
    assert audio.check_degraded(hot) == ["disk"]  # the state is seen ...
    audio.lockview_done("S1")
    rec.start(StartRequest(session_id="S1", command_id="c1", start_at_ns=time.time_ns() + 10**9))
    result = audio.beep(BeepRequest(session_id="S1", command_id="b1", at_ns=time.time_ns() + 10**9))
    stop(rec, "S1")
    assert not result.scheduled and "tones are off" in (result.reason or "")
    assert audio.player.records() == []  # ... but no tone at all: none was even scheduled
    assert bin_.calls("aplay") == []


def test_the_beep_is_refused_for_a_session_the_node_is_not_armed_for(tmp_path: Path) -> None:
    bin_, audio, rec = agent_audio(tmp_path)
    with pytest.raises(RecordingConflict, match="not armed for session S1"):
        audio.beep(BeepRequest(session_id="S1", command_id="b1", at_ns=time.time_ns() + 10**9))
    rec.start(StartRequest(session_id="S2", command_id="c1", start_at_ns=time.time_ns() + 10**9))
    try:
        with pytest.raises(RecordingConflict, match="recording session S2"):
            audio.beep(BeepRequest(session_id="S1", command_id="b2", at_ns=time.time_ns() + 10**9))
        late = audio.beep(BeepRequest(session_id="S2", command_id="b3", at_ns=time.time_ns() - 1))
        assert not late.scheduled and "passed" in (late.reason or "")
        at = time.time_ns() + 400_000_000
        first = audio.beep(BeepRequest(session_id="S2", command_id="b4", at_ns=at))
        again = audio.beep(BeepRequest(session_id="S2", command_id="b4", at_ns=at))
        assert first.scheduled and again == first
        wait_for(lambda: bin_.calls("aplay"))
    finally:
        stop(rec, "S2")
    # The repeated command id scheduled nothing more: one tone, played once.
    assert [r.kind for r in audio.player.records()] == [ToneKind.start]
    assert len(bin_.calls("aplay")) == 1
