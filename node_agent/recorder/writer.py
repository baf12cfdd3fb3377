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

from node_agent.schemas import Codec

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
        self._fh = open(path, "xb")  # noqa: SIM115 - closed in close()
        self._hash = hashlib.sha256()
        self._lock = threading.Lock()
        self.size_bytes = 0
        self._synced_bytes = 0

    def write(self, data: Any) -> int:
        """Append ``data``; PyAV calls this with each buffer the muxer emits."""
        buf = bytes(data)
        self._hash.update(buf)
        with self._lock:
            self._fh.write(buf)
            self.size_bytes += len(buf)
        return len(buf)

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


class _NullSink:
    def write(self, data: Any) -> int:
        return len(data)


def warm_up_encoder(codec: Codec, width: int, height: int, fps: float, bitrate_bps: int) -> str:
    """Encode one frame to nowhere, so that the first real start does not pay for loading
    and initialising the encoder (about 130 ms here; more on a Pi). Returns its name."""
    container = av.open(
        _NullSink(), mode="w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}
    )
    errors = []
    try:
        for name in ENCODERS[codec]:
            try:
                stream = container.add_stream(name, rate=fps_fraction(fps))
                assert isinstance(stream, av.VideoStream)
                stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                stream.bit_rate = bitrate_bps
                stream.codec_context.options = dict(ENCODER_OPTIONS.get(name, {}))
                frame = av.VideoFrame(width, height, "yuv420p")
                frame.pts = 0
                for packet in stream.encode(frame):
                    container.mux(packet)
                for packet in stream.encode(None):
                    container.mux(packet)
                return name
            except (av.FFmpegError, ValueError) as err:
                errors.append(f"{name}: {err}")
        raise EncoderUnavailable(f"no {codec.value} encoder could be opened: {'; '.join(errors)}")
    finally:
        container.close()


class Mp4Writer:
    """Encodes frames into a fragmented MP4 at ``path``."""

    def __init__(
        self,
        path: Path,
        codec: Codec,
        width: int,
        height: int,
        fps: float,
        bitrate_bps: int,
        gop_frames: int,
    ) -> None:
        self.path = path
        self.sink = HashingSink(path)
        self.container = av.open(
            self.sink,
            mode="w",
            format="mp4",
            options={"movflags": "frag_keyframe+empty_moov+default_base_moof"},
        )
        rate = fps_fraction(fps)
        errors: list[str] = []
        self.encoder = ""
        for name in ENCODERS[codec]:
            try:
                stream = self.container.add_stream(name, rate=rate)
                assert isinstance(stream, av.VideoStream)
                stream.width = width
                stream.height = height
                stream.pix_fmt = "yuv420p"
                stream.bit_rate = bitrate_bps
                stream.codec_context.gop_size = gop_frames
                stream.codec_context.time_base = 1 / rate
                stream.codec_context.options = dict(ENCODER_OPTIONS.get(name, {}))
                stream.codec_context.open()
            except (av.FFmpegError, ValueError) as err:
                errors.append(f"{name}: {err}")
                continue
            self.stream = stream
            self.encoder = name
            break
        if not self.encoder:
            self.container.close()
            self.sink.close()
            path.unlink(missing_ok=True)
            raise EncoderUnavailable(
                f"no {codec.value} encoder could be opened: {'; '.join(errors)}"
            )

    def write(self, frame: av.VideoFrame, pts: int) -> None:
        """Encode one frame at presentation slot ``pts`` (in frames)."""
        frame.pts = pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> tuple[int, str]:
        """Flush the encoder, write the trailer, fsync; returns (size in bytes, sha256)."""
        for packet in self.stream.encode(None):
            self.container.mux(packet)
        self.container.close()
        sha = self.sink.close()
        return self.sink.size_bytes, sha
