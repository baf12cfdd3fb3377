"""One day's stills into an MP4 (H.264 with PyAV; no system ffmpeg needed).

``render_in_child`` runs the same render in a child process at low priority (``nice``)
with one encoder thread, so the end-of-day video of the daily cycle never competes
with a capture, and the encoder's memory goes away with the child:
``python -m node_agent.timelapse.render FOLDER DAY FPS CAM_ID --nice 19 --threads 1``
prints the video as JSON (or ``{"error": ...}`` and exit 1).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from common.fsutil import fsync_dir
from node_agent.naming import video_name
from node_agent.timelapse.errors import NoStills, TimelapseFailure
from node_agent.timelapse.schemas import TimelapseVideo
from node_agent.timelapse.storage import day_stills

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

# libx264 first; the Pi 4's hardware encoder, then MPEG-4 part 2, when it is missing.
ENCODERS = ("libx264", "h264_v4l2m2m", "mpeg4")
ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "crf": "20"},
    "h264_v4l2m2m": {},
    "mpeg4": {"qscale": "3"},
}


def _load(path: Path) -> Image.Image | None:
    # PIL here, not at the top: the render runs in a child process (render_in_child), so
    # the agent, which imports this module at start, never loads PIL (about 2 MB RSS).
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # also forces the decode, inside the try
    except (OSError, UnidentifiedImageError) as err:
        log.warning("timelapse render: %s left out (%s)", path.name, err)
        return None


def _open_stream(
    container: av.container.OutputContainer,
    rate: Fraction,
    width: int,
    height: int,
    threads: int | None = None,
) -> tuple[av.VideoStream, str]:
    errors = []
    for name in ENCODERS:
        try:
            stream = container.add_stream(name, rate=rate)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = dict(ENCODER_OPTIONS.get(name, {}))
            if threads is not None:
                stream.codec_context.thread_count = threads
                if name == "libx264":
                    stream.options["threads"] = str(threads)
            stream.codec_context.open()
            return stream, name
        except (av.FFmpegError, ValueError) as err:
            errors.append(f"{name}: {err}")
    raise TimelapseFailure("no video encoder could be opened: " + "; ".join(errors))


def render_day(
    folder: Path, day: dt.date, fps: float, cam_id: str, threads: int | None = None
) -> TimelapseVideo:
    """Encode the day's stills in capture order, one frame each, into ``video_name``.

    The video takes the first still's size (even sides); stills of another size are
    scaled to it, unreadable ones are left out and counted. The file is written under
    a temporary name and renamed when complete. ``threads``: encoder threads (None:
    the encoder's choice, one per core).
    """
    stills = day_stills(folder, day)
    if not stills:
        raise NoStills(f"no timelapse stills for {day.isoformat()} on this node")
    rel = video_name(cam_id, day)
    out = folder / rel
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TimelapseFailure(f"cannot create the videos folder {out.parent}: {err}") from err
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    # the recorder's fps_fraction, inline: importing the recorder would load the agent's
    # settings and FastAPI into the render's child (1.5 s and tens of MB)
    rate = Fraction(fps).limit_denominator(1001)
    frames = skipped = 0
    width = height = 0
    encoder = ""
    try:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream: av.VideoStream | None = None
            for path in stills:
                img = _load(path)
                if img is None:
                    skipped += 1
                    continue
                if stream is None:
                    width, height = max(2, img.width // 2 * 2), max(2, img.height // 2 * 2)
                    stream, encoder = _open_stream(container, rate, width, height, threads)
                frame = av.VideoFrame.from_ndarray(np.asarray(img), format="rgb24").reformat(
                    width=width, height=height, format="yuv420p"
                )
                frame.pts = frames
                frame.time_base = 1 / rate
                container.mux(stream.encode(frame))
                frames += 1
            if stream is None:
                raise NoStills(
                    f"none of the {len(stills)} stills of {day.isoformat()} could be read"
                )
            container.mux(stream.encode(None))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
        fsync_dir(out.parent)
    except av.FFmpegError as err:
        raise TimelapseFailure(f"encoding the {day.isoformat()} video failed: {err}") from err
    except OSError as err:
        raise TimelapseFailure(f"cannot write {rel}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)
    return TimelapseVideo(
        day=day.isoformat(),
        file_name=rel,
        frames=frames,
        skipped_stills=skipped,
        fps=fps,
        width=width,
        height=height,
        duration_s=round(frames / fps, 3),
        size_bytes=out.stat().st_size,
        encoder=encoder,
        rendered_ns=time.time_ns(),
    )


@dataclass(frozen=True)
class ChildRender:
    """A render done in the child: the video, the child's CPU seconds and its niceness."""

    video: TimelapseVideo
    cpu_s: float
    niceness: int


def render_in_child(
    folder: Path,
    day: dt.date,
    fps: float,
    cam_id: str,
    *,
    nice: int = 19,
    threads: int = 1,
    timeout_s: float = 6 * 3600,
) -> ChildRender:
    """``render_day`` in a child process at ``nice``, ``threads`` encoder threads.

    Returns the video, the CPU seconds the child used (user + system) and the niceness
    it ran at (this process's plus ``nice``, at most 19). Raises
    TimelapseFailure (the child's own reason) when the render fails or times out.
    """
    argv = [sys.executable, "-m", "node_agent.timelapse.render", str(folder), day.isoformat()]
    argv += [f"{fps:g}", cam_id, "--nice", str(nice), "--threads", str(threads)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as err:
        raise TimelapseFailure(
            f"rendering the {day.isoformat()} video took longer than {timeout_s:g} s"
        ) from err
    lines = proc.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        answer = {}
    if proc.returncode != 0 or "video" not in answer:
        reason = answer.get("error") or (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TimelapseFailure(f"rendering the {day.isoformat()} video failed: {reason}")
    return ChildRender(
        TimelapseVideo.model_validate(answer["video"]),
        float(answer.get("cpu_s", 0.0)),
        int(answer.get("niceness", 0)),
    )


def main(args: list[str] | None = None) -> int:
    """The child's entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m node_agent.timelapse.render")
    parser.add_argument("folder", type=Path)
    parser.add_argument("day", type=dt.date.fromisoformat)
    parser.add_argument("fps", type=float)
    parser.add_argument("cam_id")
    parser.add_argument("--nice", type=int, default=19)
    parser.add_argument("--threads", type=int, default=1)
    ns = parser.parse_args(args)
    niceness = os.nice(ns.nice)
    try:
        video = render_day(ns.folder, ns.day, ns.fps, ns.cam_id, threads=ns.threads)
    except (NoStills, TimelapseFailure) as err:
        print(json.dumps({"error": err.message}))
        return 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = round(usage.ru_utime + usage.ru_stime, 3)
    answer = {"video": video.model_dump(mode="json"), "cpu_s": cpu_s, "niceness": niceness}
    print(json.dumps(answer))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
