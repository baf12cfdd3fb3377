"""Recordings the agent did not finish (kill -9, power cut): found at start, made whole.

While a recording runs, a journal (``.{file}.journal.json``) beside it holds what its
manifest will need. At the next start every recording with a journal and no manifest
is analysed: the fragments that reached the disk are counted, the SHA-256 of the file
as it is is computed, and a manifest marked ``interrupted`` with the playable duration
is written. Nothing in the recording is changed or removed.
"""

from __future__ import annotations

import calendar
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import av
from pydantic import ValidationError

from common.fsutil import atomic_write_bytes
from node_agent.naming import RECORDING_NAME, journal_path, manifest_name
from node_agent.recorder.manifest import write_manifest
from node_agent.schemas import Codec, FrameSyncReport, Manifest, Position, Wire

log = logging.getLogger(__name__)


class Journal(Wire):
    """What a running recording's manifest will need, kept on disk while it runs."""

    session_id: str
    cam_id: str
    node_id: str
    position: Position
    file_name: str
    scheduled_start_ns: int | None
    armed_at_ns: int
    profile: str
    profile_notes: list[str]
    width: int
    height: int
    fps: float
    codec: Codec
    encoder: str
    bitrate_bps: int
    software_version: str
    first_frame_ns: int | None = None
    clock_offset_ns: int | None = None
    clock_synchronized: bool = False
    clock_error_bound_ns: int | None = None
    clock_reference: str | None = None
    start_deadline_ns: int | None = None
    start_late_ns: int = 0
    first_frame_source: str = "capture"
    frame_sync: FrameSyncReport | None = None
    realtime_start: bool = False

    def manifest(
        self,
        *,
        file_name: str,
        first_frame_ns: int,
        duration_s: float,
        frame_count: int,
        dropped_frames: int,
        size_bytes: int,
        sha256: str,
        stop_reason: str,
        interrupted: bool = False,
        lockview_file: str | None = None,
    ) -> Manifest:
        """The manifest of this recording, with what only its end can tell."""
        last = first_frame_ns + round(max(0.0, duration_s - 1 / self.fps) * 1e9)
        return Manifest(
            session_id=self.session_id,
            cam_id=self.cam_id,
            node_id=self.node_id,
            position=self.position,
            file_name=file_name,
            scheduled_start_ns=self.scheduled_start_ns,
            first_frame_ns=first_frame_ns,
            realtime_start=self.realtime_start,
            last_frame_ns=last if frame_count else first_frame_ns,
            clock_offset_ns=self.clock_offset_ns,
            clock_synchronized=self.clock_synchronized,
            clock_error_bound_ns=self.clock_error_bound_ns,
            clock_reference=self.clock_reference,
            start_deadline_ns=self.start_deadline_ns,
            start_late_ns=self.start_late_ns,
            first_frame_source=self.first_frame_source,
            frame_sync=self.frame_sync,
            duration_s=duration_s,
            frame_count=frame_count,
            dropped_frames=dropped_frames,
            width=self.width,
            height=self.height,
            fps=self.fps,
            codec=self.codec,
            encoder=self.encoder,
            bitrate_bps=self.bitrate_bps,
            profile=self.profile,
            profile_notes=self.profile_notes,
            size_bytes=size_bytes,
            sha256=sha256,
            software_version=self.software_version,
            stop_reason=stop_reason,
            interrupted=interrupted,
            lockview_file=lockview_file,
        )


def write_journal(recording: Path, journal: Journal) -> None:
    """Write (or rewrite) the journal atomically."""
    atomic_write_bytes(journal_path(recording), journal.model_dump_json().encode())


@dataclass(frozen=True)
class Playable:
    """What a (possibly truncated) fragmented MP4 still holds."""

    frames: int
    duration_s: float


def analyse(path: Path, fps: float) -> Playable:
    """Count the video packets that can be read back, up to a truncated last fragment."""
    frames = 0
    first_pts: int | None = None
    last_pts: int | None = None
    tb: float = 1 / fps
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            tb = float(stream.time_base) if stream.time_base else tb
            try:
                for packet in container.demux(stream):
                    if packet.pts is None or packet.size == 0:
                        continue
                    frames += 1
                    first_pts = packet.pts if first_pts is None else min(first_pts, packet.pts)
                    last_pts = packet.pts if last_pts is None else max(last_pts, packet.pts)
            except (av.FFmpegError, EOFError) as err:  # the fragment the crash cut short
                log.info("%s ends in a partial fragment: %s", path.name, err)
    except (av.FFmpegError, IndexError, EOFError) as err:
        log.warning("%s holds no readable video: %s", path.name, err)
        return Playable(0, 0.0)
    if first_pts is None or last_pts is None:
        return Playable(0, 0.0)
    return Playable(frames, round((last_pts - first_pts) * tb + 1 / fps, 6))


def sha256_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file."""
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256")
        return fh.tell(), digest.hexdigest()


def _journal_from_name(path: Path, node_id: str, version: str) -> Journal | None:
    m = RECORDING_NAME.match(path.name)
    if m is None:
        return None
    stamp = time.strptime(m["date"] + m["time"], "%Y%m%d%H%M%S")
    start_ns = calendar.timegm(stamp) * 1_000_000_000
    return Journal(
        session_id=m["session"],
        cam_id=m["cam"],
        node_id=node_id,
        position=Position.other,
        file_name=path.name,
        scheduled_start_ns=None,
        armed_at_ns=start_ns,
        profile="unknown (no journal)",
        profile_notes=[],
        width=0,
        height=0,
        fps=30.0,
        codec=Codec.h264,
        encoder="unknown",
        bitrate_bps=0,
        software_version=version,
        first_frame_ns=start_ns,
    )


def recover(directory: Path, node_id: str, version: str) -> list[Manifest]:
    """Write an ``interrupted`` manifest for every recording that has none; return them."""
    done: list[Manifest] = []
    have = {p.name for p in directory.glob("*.json")}
    for path in sorted(directory.glob("*.mp4")):
        jpath = journal_path(path)
        journal: Journal | None = None
        if jpath.exists():
            try:
                journal = Journal.model_validate_json(jpath.read_bytes())
            except (OSError, ValidationError) as err:
                log.warning("journal %s unreadable: %s", jpath.name, err)
        if journal is None:
            journal = _journal_from_name(path, node_id, version)
        if journal is None:
            continue  # not one of ours
        if manifest_name(journal.session_id, journal.cam_id) in have:
            jpath.unlink(missing_ok=True)  # finished normally; the journal outlived it
            continue
        playable = analyse(path, journal.fps)
        size, sha = sha256_file(path)
        first = journal.first_frame_ns or journal.armed_at_ns
        manifest = journal.manifest(
            file_name=path.name,
            first_frame_ns=first,
            duration_s=playable.duration_s,
            frame_count=playable.frames,
            dropped_frames=0,
            size_bytes=size,
            sha256=sha,
            stop_reason="interrupted: the agent stopped without finishing this recording",
            interrupted=True,
        )
        write_manifest(directory, manifest)
        jpath.unlink(missing_ok=True)
        log.warning(
            "recovered %s: %d frames (%.1f s) playable, sha256 %s",
            path.name,
            playable.frames,
            playable.duration_s,
            sha[:12],
        )
        done.append(manifest)
    return done
