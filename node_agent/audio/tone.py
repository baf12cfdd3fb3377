"""Tones as WAV files: a short sine with a fade in and out, generated once and cached.

``tone_wav`` is pure (it returns the bytes of a 16-bit mono WAV); ``ToneCache`` keeps one
file per (frequency, length, volume) in the agent's data folder, written temp + fsync +
rename, so ``aplay`` never reads half a file and a tone costs nothing after the first.
"""

from __future__ import annotations

import io
import math
import wave
from pathlib import Path

import numpy as np

from common.fsutil import atomic_write_bytes

SAMPLE_RATE = 48_000
# A click-free start and end: a sine cut at full amplitude is heard as a click.
FADE_MS = 5.0


def tone_samples(hz: float, ms: int, volume: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The tone as int16 samples: a sine of ``hz`` for ``ms`` at ``volume`` (0-1] of full
    scale, with a linear fade in and out of ``FADE_MS`` (at most a third of the tone)."""
    n = max(1, round(sample_rate * ms / 1000))
    t = np.arange(n, dtype=np.float64) / sample_rate
    wave_ = np.sin(2 * math.pi * hz * t)
    fade = min(round(sample_rate * FADE_MS / 1000), n // 3)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        wave_[:fade] *= ramp
        wave_[n - fade :] *= ramp[::-1]
    return np.round(wave_ * volume * 32767).astype(np.int16)


def tone_wav(hz: float, ms: int, volume: float, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A 16-bit mono WAV holding ``tone_samples(hz, ms, volume)``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(tone_samples(hz, ms, volume, sample_rate).astype("<i2").tobytes())
    return buf.getvalue()


def tone_name(hz: float, ms: int, volume: float) -> str:
    """The cache file's name: ``tone-1000hz-200ms-v050.wav``."""
    return f"tone-{hz:g}hz-{ms}ms-v{round(volume * 100):03d}.wav"


class ToneCache:
    """One WAV per (hz, ms, volume) under ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, hz: float, ms: int, volume: float) -> Path:
        """The tone's file, generated on first use."""
        path = self.directory / tone_name(hz, ms, volume)
        if not path.is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(path, tone_wav(hz, ms, volume))
        return path
