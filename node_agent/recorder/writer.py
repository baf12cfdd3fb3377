"""Fragmented MP4 writer that hashes every byte as it goes to disk.

The container writes through a non-seekable sink, so the muxer never goes back to
patch earlier bytes: the SHA-256 of what passed through the sink is the SHA-256 of
the file, and it is ready the moment the trailer is written. Fragments
(``frag_keyframe+empty_moov``) keep everything before a crash playable.
"""

from __future__ import annotations

import hashlib
import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from node_agent.audio.track import AudioTrack
from node_agent.schemas import Codec
from node_agent.settings import CameraSettings, Profile

# Encoders tried for each codec, best first (h264_v4l2m2m: the Pi 4's hardware encoder).
ENCODERS: dict[Codec, tuple[str, ...]] = {
    Codec.h264: ("libx264", "h264_v4l2m2m"),
    Codec.h265: ("libx265",),
}

ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    # zerolatency: no lookahead, so a stop flushes at once and fragments close on time.
    "libx264": {"preset": "ultrafast", "tune": "zerolatency"},
    "libx265": {"preset": "ultrafast", "tune": "zerolatency", "x265-params": "log-level=error"},
    "h264_v4l2m2m": {},
}


class EncoderUnavailable(Exception):
    """No encoder for the requested codec could be opened."""


class HashingSink:
    """A write-only file object: appends to ``path`` and feeds a SHA-256 on the way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Unbuffered: every buffer the muxer flushes goes to the kernel at once.
        self._fh = open(path, "xb", buffering=0)  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self._lock = threading.Lock()
        self.size_bytes = 0
        self._synced_bytes = 0

    def write(self, data: Any) -> int:
        """Append ``data``; PyAV calls this with each buffer the muxer emits."""
        view = memoryview(bytes(data))
        total = len(view)
        with self._lock:
            while view:
                # A raw write may be partial; the hash covers exactly what reached the file,
                # even when the disk fills in the middle of a buffer.
                n = self._fh.write(view) or 0
                self._hash.update(view[:n])
                self.size_bytes += n
                view = view[n:]
        return total

    def flush(self) -> None:
        """Push buffered bytes to the kernel."""
        with self._lock:
            self._fh.flush()

    def sync(self) -> None:
        """Flush and fdatasync what was written so far (called from a background ticker)."""
        with self._lock:
            if self._fh.closed or self.size_bytes == self._synced_bytes:
                return
            self._fh.flush()
            fd = self._fh.fileno()
            size = self.size_bytes
        os.fdatasync(fd)
        self._synced_bytes = size

    def close(self) -> str:
        """Flush, fsync, close; returns the hex SHA-256 of everything written."""
        with self._lock:
            if not self._fh.closed:
                try:
                    self._fh.flush()
                    os.fsync(self._fh.fileno())
                finally:
                    self._fh.close()
        return self._hash.hexdigest()


def fps_fraction(fps: float) -> Fraction:
    """A frame rate as an exact fraction (29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


class NullSink:
    """A write-only file object that keeps nothing (warm-ups and benchmarks)."""

    def write(self, data: Any) -> int:
        return len(data)


def open_video_stream(
    container: av.container.OutputContainer,
    profile: Profile,
    bitrate_bps: int,
    gop_frames: int,
    extra_options: dict[str, dict[str, str]],
) -> tuple[av.VideoStream, str]:
    """Add and open a video stream with the first encoder of the profile's codec that works."""
    codec = profile.codec
    rate = fps_fraction(profile.fps)
    errors: list[str] = []
    for name in ENCODERS[codec]:
        try:
            stream = container.add_stream(name, rate=rate)
            assert isinstance(stream, av.VideoStream)
            stream.width = profile.width
            stream.height = profile.height
            stream.pix_fmt = "yuv420p"
            stream.bit_rate = bitrate_bps
            stream.codec_context.gop_size = gop_frames
            stream.codec_context.time_base = 1 / rate
            stream.codec_context.options = {
                **ENCODER_OPTIONS.get(name, {}),
                **extra_options.get(name, {}),
            }
            stream.codec_context.open()
        except (av.FFmpegError, ValueError, OSError) as err:
            errors.append(f"{name}: {err}")
            continue
        return stream, name
    raise EncoderUnavailable(f"no {codec.value} encoder could be opened ({'; '.join(errors)})")


def warm_up_encoder(
    profile: Profile,
    bitrate_bps: int,
    extra_options: dict[str, dict[str, str]] | None = None,
) -> str:
    """Encode one frame to nowhere, so that the first real start does not pay for loading
    and initialising the encoder (about 130 ms here; more on a Pi). Returns its name;
    raises EncoderUnavailable when no encoder for the profile's codec opens."""
    container = av.open(
        NullSink(), mode="w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}
    )
    try:
        stream, name = open_video_stream(container, profile, bitrate_bps, 1, extra_options or {})
        frame = av.VideoFrame(profile.width, profile.height, "yuv420p")
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        return name
    finally:
        container.close()


class Mp4Writer:
    """Encodes frames into a fragmented MP4 at ``path``; with ``audio`` (camera.audio), an
    AAC track from the camera's audio input too (``audio_error`` says why there is none)."""

    def __init__(
        self,
        path: Path,
        profile: Profile,
        bitrate_bps: int,
        gop_frames: int,
        extra_options: dict[str, dict[str, str]] | None = None,
        audio: CameraSettings | None = None,
    ) -> None:
        self.path = path
        self.sink = HashingSink(path)
        # flush_packets: each fragment reaches the file as soon as the muxer closes it, so
        # a kill -9 loses at most the fragment being filled. max_interleave_delta: with an
        # audio track that stalls, video is held back for interleaving at most 0.5 s.
        self.container = av.open(
            self.sink,
            mode="w",
            format="mp4",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "flush_packets": "1",
                "max_interleave_delta": "500000",
            },
        )
        self.audio: AudioTrack | None = None
        self.audio_error: str | None = None
        try:
            self.stream, self.encoder = open_video_stream(
                self.container, profile, bitrate_bps, gop_frames, extra_options or {}
            )
        except EncoderUnavailable:
            self.container.close()
            self.sink.close()
            path.unlink(missing_ok=True)
            raise
        if audio is not None:
            self.audio, self.audio_error = AudioTrack.open(self.container, audio)

    def begin_audio(self, first_frame_ns: int) -> None:
        """The first video frame was taken at ``first_frame_ns``: the audio track's start."""
        if self.audio is not None:
            self.audio.begin(first_frame_ns)

    @property
    def audio_note(self) -> str | None:
        """Why the recording has no (or a cut) audio track; None when it is fine or off."""
        if self.audio is not None and self.audio.error is not None:
            return self.audio.error
        return self.audio_error

    def write(self, frame: av.VideoFrame, pts: int) -> None:
        """Encode one frame at presentation slot ``pts`` (in frames)."""
        frame.pts = pts
        frame.time_base = self.stream.codec_context.time_base  # pts counts frames
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        if self.audio is not None:
            self.audio.drain()

    def close(self) -> tuple[int, str]:
        """Flush the encoders, write the trailer, fsync; returns (size in bytes, sha256)."""
        if self.audio is not None:
            self.audio.close()
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        sha = self.sink.close()
        return self.sink.size_bytes, sha
