"""The recording's audio track: a WAV source through the capture adapter, muxed as AAC, the
beep found where it was; a failing input leaves the video recording and says why."""

from __future__ import annotations

import time
import wave
from pathlib import Path

import av
import numpy as np

from node_agent.audio.tone import tone_samples
from node_agent.schemas import RecorderState, StartRequest
from tests.test_recorder import make_recorder, stop

RATE = 48_000
BEEP_AT_S = 0.4
BEEP_HZ = 1000.0


def write_source(path: Path, seconds: float = 3.0) -> None:
    """Quiet noise with a 1 kHz beep of 150 ms at BEEP_AT_S (an ALSA-like input)."""
    rng = np.random.default_rng(1)
    samples = (rng.standard_normal(round(RATE * seconds)) * 100).astype(np.int16)
    beep = tone_samples(BEEP_HZ, 150, 0.8, RATE)
    start = round(BEEP_AT_S * RATE)
    samples[start : start + beep.size] = beep
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(samples.astype("<i2").tobytes())


def wait_until(cond: object, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def first_loud_s(path: Path) -> tuple[float, float]:
    """Where the decoded audio first gets loud (s from the track's start), and its duration."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray()[0] for f in container.decode(stream)]
        start = stream.start_time
        start_time = float(start * stream.time_base) if start and stream.time_base else 0.0
    pcm = np.concatenate(chunks)
    window = RATE // 100  # 10 ms
    n = pcm.size // window
    rms = np.sqrt(np.mean(pcm[: n * window].reshape(n, window) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.3)
    assert loud.size, "no beep in the audio track"
    # AAC's priming samples are in the decoded stream before the start time.
    return loud[0] * window / RATE + start_time, pcm.size / RATE


def test_recording_with_a_wav_source_has_the_beep_near_the_start(tmp_path: Path) -> None:
    source = tmp_path / "input.wav"
    write_source(source)
    rec = make_recorder(tmp_path / "rec", audio=True, audio_device=str(source), audio_format="wav")
    (tmp_path / "rec").mkdir()
    rec.start(StartRequest(session_id="A1", command_id="c1"))
    wait_until(lambda: rec.state == RecorderState.recording)
    wait_until(lambda: rec.job is not None and rec.job.counters.frames >= 45)
    m = stop(rec, "A1").manifest
    assert m is not None and m.audio_track and m.audio_note is None
    path = tmp_path / "rec" / m.file_name
    with av.open(str(path)) as container:
        assert len(container.streams.video) == 1
        audio = container.streams.audio
        assert len(audio) == 1 and audio[0].codec_context.name == "aac"
        assert audio[0].sample_rate == RATE
    beep_s, total_s = first_loud_s(path)
    # The WAV's first sample is the first video frame: the beep lands at its offset.
    print(f"beep at {beep_s:.3f} s (expected {BEEP_AT_S} s)")
    assert abs(beep_s - BEEP_AT_S) < 0.015, beep_s
    assert total_s >= 1.0


def test_a_missing_audio_input_still_records_the_video_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    rec = make_recorder(
        tmp_path / "rec", audio=True, audio_device=str(tmp_path / "absent.wav"), audio_format="wav"
    )
    rec.start(StartRequest(session_id="A2", command_id="c1"))
    wait_until(lambda: rec.job is not None and rec.job.counters.frames >= 10)
    m = stop(rec, "A2").manifest
    assert m is not None and m.frame_count >= 10
    assert not m.audio_track
    assert m.audio_note is not None and "absent.wav" in m.audio_note
    with av.open(str(tmp_path / "rec" / m.file_name)) as container:
        assert len(container.streams.video) == 1 and not container.streams.audio
        assert sum(1 for _ in container.decode(video=0)) == m.frame_count
