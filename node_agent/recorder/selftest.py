"""The self-test: record a short clip with the profile in use, check it, hash it, delete it."""

from __future__ import annotations

import os
import time

import av

from common.errors import CamfleetError
from node_agent.naming import selftest_clip_name
from node_agent.recorder.recovery import sha256_file
from node_agent.recorder.service import Recorder
from node_agent.schemas import SelfTestResult

DISK_TEST_BYTES = 32 * 1024 * 1024


def disk_write_speed(directory: os.PathLike[str], size_bytes: int = DISK_TEST_BYTES) -> float:
    """Bytes per second for writing ``size_bytes`` and fsyncing them (the file is removed)."""
    path = os.path.join(directory, f".disk-test-{os.getpid()}")
    block = os.urandom(1 << 20)
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < size_bytes:
            written += os.write(fd, block[: min(len(block), size_bytes - written)])
        os.fsync(fd)
    finally:
        os.close(fd)
        os.unlink(path)
    return size_bytes / (time.perf_counter() - t0)


def decoded_frames(path: os.PathLike[str]) -> int:
    """How many frames decode from the file."""
    with av.open(os.fspath(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def run_selftest(recorder: Recorder, duration_s: float) -> SelfTestResult:
    """Record ``duration_s`` seconds, verify the clip, delete it; pass/fail with reasons."""
    ident = recorder.identity
    gates = recorder.check_gates(duration_s)
    errors = [f"gate {g.gate}: {g.reason}" for g in gates if not g.ok]

    def failed_early() -> SelfTestResult:
        return SelfTestResult(
            node_id=ident.node_id,
            cam_id=ident.cam_id,
            passed=False,
            profile=recorder.profiles.current.name,
            encoder="",
            duration_s=0.0,
            frames=0,
            decoded_frames=0,
            dropped_frames=0,
            encode_fps=0.0,
            disk_write_bytes_per_s=0.0,
            size_bytes=0,
            sha256="",
            gates=gates,
            errors=errors,
        )

    if any(g.gate == "storage" and not g.ok for g in gates):
        return failed_early()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    try:
        job = recorder.arm_clip(f"selftest-{stamp}", selftest_clip_name(stamp))
    except CamfleetError as err:
        errors.append(err.message)
        return failed_early()
    job.begin()
    job.done_event.wait(duration_s)
    job.stop_event.set()
    job.done_event.wait()
    path, c, profile = job.path, job.counters, job.spec.profile
    decoded, span, write_speed = 0, 0.0, 0.0
    try:
        if c.error:
            errors.append(f"recording: {c.error}")
        if c.first_frame_ns is not None and c.last_frame_ns is not None and c.frames:
            span = (c.last_frame_ns - c.first_frame_ns) / 1e9 + 1 / profile.fps
        if path.exists():
            try:
                decoded = decoded_frames(path)
            except (av.FFmpegError, IndexError) as err:
                errors.append(f"the clip does not decode: {err}")
            if sha256_file(path)[1] != c.sha256:
                errors.append(
                    "the clip read back does not match the SHA-256 computed while writing"
                )
        else:
            errors.append("no clip was written")
        try:
            write_speed = disk_write_speed(path.parent)
        except OSError as err:
            errors.append(f"disk write test failed: {err}")
    finally:
        path.unlink(missing_ok=True)
    expected = c.frames + c.dropped_frames
    if c.frames == 0:
        errors.append("no frames were recorded")
    elif decoded != c.frames:
        errors.append(f"{decoded} of {c.frames} frames decode")
    if expected and c.dropped_frames / expected > recorder.camera.max_drop_ratio:
        errors.append(
            f"dropped {c.dropped_frames} of {expected} frames: this node cannot sustain "
            f"{profile.name}"
        )
    return SelfTestResult(
        node_id=ident.node_id,
        cam_id=ident.cam_id,
        passed=not errors,
        profile=profile.name,
        encoder=job.spec.encoder,
        duration_s=round(span, 3),
        frames=c.frames,
        decoded_frames=decoded,
        dropped_frames=c.dropped_frames,
        encode_fps=round(c.frames / span, 2) if span else 0.0,
        disk_write_bytes_per_s=round(write_speed),
        size_bytes=c.size_bytes,
        sha256=c.sha256,
        gates=gates,
        errors=errors,
    )
