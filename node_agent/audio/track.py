"""The recording's audio track: an ALSA device (or a WAV file, through the same adapter)
read by a capture thread and encoded as AAC into the recording's container.

The input is opened when the recording arms (``AudioTrack.open`` answers None with the
reason when it cannot be, and the recording goes on without audio). The capture thread
reads from then on and keeps only what comes after the video's first frame (the
anchor); the track starts with silence up to the first sample it has, so sample 0 of the
track is the first video frame. A WAV file is delivered at the pace of a live input,
its first sample at the anchor, so a tone at a known offset lands at that offset.

Encoding and muxing stay on the recording thread (``drain``, called after each video
frame): a container is not safe to write from two threads. Any failure of the input or
of the encoder ends the track, never the video; ``error`` says why.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import av
import numpy as np

from node_agent.settings import CameraSettings

log = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000
QUEUE_FRAMES = 2000  # about 40 s of typical ALSA periods: the recording thread drains it
# FFmpeg's AAC encoder primes with one frame of 1024 samples; the fragmented MP4 has no
# edit list to hide it, so a decoder plays it first. The track is fed that much early.
AAC_PRIMING_SAMPLES = 1024
# The ALSA demuxer stamps each frame with the wall clock; a stamp further than this from
# the time it was read is not believed (the read time is used instead).
MAX_STAMP_SKEW_NS = 5 * NS_PER_S


@dataclass(frozen=True)
class Chunk:
    """Samples (planar float32, ``channels x n``) and the wall instant of the first."""

    samples: np.ndarray
    wall_ns: int


def layout_name(channels: int) -> str:
    """The channel layout PyAV names for ``channels`` (1 or 2)."""
    return "mono" if channels == 1 else "stereo"


def open_input(camera: CameraSettings) -> av.container.InputContainer:
    """The configured input: an ALSA capture device, or a WAV file."""
    if camera.audio_format == "alsa":
        options = {
            "sample_rate": str(camera.audio_sample_rate),
            "channels": str(camera.audio_channels),
        }
        return av.open(camera.audio_device, format="alsa", options=options)
    return av.open(camera.audio_device, format="wav")


class AudioTrack:
    """One recording's audio: the input, its capture thread and the AAC stream."""

    def __init__(
        self,
        container: av.container.OutputContainer,
        camera: CameraSettings,
        source: av.container.InputContainer,
    ) -> None:
        self.camera = camera
        self.rate = camera.audio_sample_rate
        self.layout = layout_name(camera.audio_channels)
        self.source = source
        self.live = camera.audio_format == "alsa"
        stream = container.add_stream("aac", rate=self.rate)
        assert isinstance(stream, av.AudioStream)
        stream.layout = self.layout
        stream.bit_rate = camera.audio_bitrate_bps
        stream.codec_context.open()
        self.stream = stream
        self.container = container
        self.error: str | None = None
        self.samples_written = 0
        self._encoder_failed = False
        self._anchor_ns: int | None = None
        self._anchor_set = threading.Event()
        self._stop = threading.Event()
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUE_FRAMES)
        self._resampler = av.AudioResampler(format="fltp", layout=self.layout, rate=self.rate)
        self._thread = threading.Thread(target=self._capture, name="audio-capture", daemon=True)
        self._thread.start()

    @classmethod
    def open(
        cls, container: av.container.OutputContainer, camera: CameraSettings
    ) -> tuple[AudioTrack | None, str | None]:
        """The track, or None and why it could not be opened (the video goes on)."""
        try:
            source = open_input(camera)
        except (av.FFmpegError, OSError, ValueError) as err:
            return None, f"audio input {camera.audio_device!r} ({camera.audio_format}): {err}"
        if not source.streams.audio:
            source.close()
            return None, f"audio input {camera.audio_device!r} has no audio stream"
        try:
            return cls(container, camera, source), None
        except (av.FFmpegError, OSError, ValueError) as err:
            source.close()
            return None, f"AAC encoder: {err}"

    def begin(self, anchor_ns: int) -> None:
        """The video's first frame was taken at ``anchor_ns``: sample 0 of the track."""
        self._anchor_ns = anchor_ns
        self._anchor_set.set()

    # -- the capture thread ------------------------------------------------------------------

    def _capture(self) -> None:
        try:
            self._read_all()
        except Exception as err:  # the device went away, the file is damaged
            self._fail(f"audio input failed: {type(err).__name__}: {err}")
        finally:
            self._queue.put(None)  # end of input (blocks only while the queue is full)
            self.source.close()

    def _read_all(self) -> None:
        paced_t0: int | None = None
        delivered = 0
        for frame in self.source.decode(audio=0):
            if self._stop.is_set():
                return
            read_ns = time.time_ns()
            for out in self._resampler.resample(frame):
                data = out.to_ndarray().astype(np.float32, copy=False)
                n = data.shape[1]
                if self.live:
                    if not self._anchor_set.is_set():
                        continue  # the device is read from arming on, kept from the anchor
                    wall = self._stamp(out, read_ns, n)
                else:
                    # A file: deliver it as a live input would, its first sample at the anchor.
                    if paced_t0 is None:
                        self._anchor_set.wait()
                        paced_t0 = self._anchor_ns or time.time_ns()
                    wall = paced_t0 + delivered * NS_PER_S // self.rate
                    delivered += n
                    due = paced_t0 + delivered * NS_PER_S // self.rate
                    if self._stop.wait(max(0, due - time.time_ns()) / NS_PER_S):
                        return
                self._put(Chunk(data, wall))

    def _stamp(self, frame: av.AudioFrame, read_ns: int, n: int) -> int:
        """The wall instant of a live frame's first sample."""
        stamp = frame.time
        if stamp is not None:
            wall = round(stamp * NS_PER_S)
            if abs(wall - read_ns) < MAX_STAMP_SKEW_NS:
                return wall
        return read_ns - n * NS_PER_S // self.rate

    def _put(self, chunk: Chunk) -> None:
        try:
            self._queue.put_nowait(chunk)
        except queue.Full:
            self._fail("audio frames dropped: the recording thread fell behind")

    def _fail(self, why: str) -> None:
        if self.error is None:
            self.error = why
            log.error("%s", why)

    # -- the recording thread ----------------------------------------------------------------

    def drain(self) -> None:
        """Encode and mux what the capture thread has read (on the recording thread)."""
        while True:
            try:
                chunk = self._queue.get_nowait()
            except queue.Empty:
                return
            if chunk is None:
                return
            self._write(chunk)

    def _write(self, chunk: Chunk) -> None:
        anchor = self._anchor_ns
        if anchor is None or self._encoder_failed:
            return  # read before the first video frame: not part of the recording
        data = chunk.samples
        # In samples from the anchor, less the encoder's priming (decoded before the first).
        start = (chunk.wall_ns - anchor) * self.rate // NS_PER_S - AAC_PRIMING_SAMPLES
        if start < self.samples_written:  # overlaps what is written (or precedes the anchor)
            data = data[:, self.samples_written - start :]
        elif start > self.samples_written and self.samples_written == 0:
            # The track starts at the first video frame: silence up to the first sample.
            silence = np.zeros((data.shape[0], start), dtype=np.float32)
            data = np.concatenate([silence, data], axis=1)
        if data.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), "fltp", self.layout)
        frame.sample_rate = self.rate
        frame.pts = self.samples_written
        self.samples_written += data.shape[1]
        try:
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
        except (av.FFmpegError, ValueError) as err:
            self._encoder_failed = True
            self._fail(f"audio encoding failed: {err}")

    def close(self) -> None:
        """Stop the capture, write what is left, flush the encoder (before the trailer)."""
        self._stop.set()
        self._anchor_set.set()
        # Unblock a capture thread waiting on a full queue, then let it finish.
        self._thread.join(timeout=2.0)
        self.drain()
        if self._encoder_failed:
            return
        try:
            for packet in self.stream.encode(None):
                self.container.mux(packet)
        except (av.FFmpegError, ValueError) as err:
            self._fail(f"audio encoding failed: {err}")
