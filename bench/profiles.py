"""Benchmark: frames per second each recording profile sustains here, and CPU per frame.

Each profile's frames come from the synthetic camera (rendered beforehand, so only the
encoder is timed) and go through the recorder's own encoder settings into a null sink,
as fast as they can. Process CPU time counts every encoder thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import av

from node_agent.camera.synthetic import SyntheticCamera
from node_agent.recorder.writer import EncoderUnavailable, NullSink, open_video_stream
from node_agent.settings import DEFAULT_PROFILES, CameraSettings, Profile


@dataclass
class ProfileResult:
    """What one profile reached."""

    profile: str
    encoder: str
    frames: int
    wall_s: float
    cpu_s: float
    render_ms: float  # generating one synthetic frame (not part of encode_fps)
    target_fps: float
    error: str | None = None

    @property
    def encode_fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        return self.cpu_s * 1000 / self.frames if self.frames else 0.0

    @property
    def sustains(self) -> bool:
        return self.error is None and self.encode_fps >= self.target_fps


def profiles_to_measure(quick: bool) -> list[Profile]:
    """The default profile list (4K and 1080p, H.265 and H.264), plus 720p H.264."""
    if quick:
        return [Profile(width=320, height=240, fps=30)]
    return [*DEFAULT_PROFILES, Profile(width=1280, height=720, fps=30)]


def measure(profile: Profile, seconds_of_video: float) -> ProfileResult:
    """Encode ``seconds_of_video`` of the profile as fast as possible."""
    camera = CameraSettings()
    bitrate = camera.clamp_bitrate(profile.bitrate_bps)
    cam = SyntheticCamera(profile.width, profile.height, profile.fps, "BENCH")
    cam.open()
    t0 = time.perf_counter()
    pool = [cam.render(i, time.time_ns()) for i in range(8)]
    render_ms = (time.perf_counter() - t0) * 1000 / len(pool)
    frames = max(8, round(seconds_of_video * profile.fps))
    container = av.open(
        NullSink(), mode="w", format="mp4", options={"movflags": "frag_keyframe+empty_moov"}
    )
    try:
        try:
            stream, encoder = open_video_stream(
                container, profile, bitrate, max(1, round(profile.fps)), {}
            )
        except EncoderUnavailable as err:
            return ProfileResult(profile.name, "", 0, 0.0, 0.0, render_ms, profile.fps, str(err))
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(frames):
            frame = pool[i % len(pool)]
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        container.close()
    return ProfileResult(profile.name, encoder, frames, wall, cpu, render_ms, profile.fps)


def run_profiles(quick: bool) -> list[ProfileResult]:
    """Every profile, a few seconds of video each (fewer frames for 4K)."""
    out = []
    for profile in profiles_to_measure(quick):
        seconds = 0.5 if quick else (2.0 if profile.height >= 2160 else 5.0)
        result = measure(profile, seconds)
        print(
            f"  profile {result.profile:<14}: {result.encode_fps:7.1f} fps, "
            f"{result.cpu_ms_per_frame:7.1f} ms CPU/frame ({result.encoder or result.error})",
            flush=True,
        )
        out.append(result)
    return out
