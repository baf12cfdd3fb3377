"""One day's stills into an MP4 (H.264 with PyAV; no system ffmpeg needed)."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from common.fsutil import fsync_dir
from node_agent.naming import video_name
from node_agent.recorder.writer import fps_fraction
from node_agent.timelapse.errors import NoStills, TimelapseFailure
from node_agent.timelapse.schemas import TimelapseVideo
from node_agent.timelapse.storage import day_stills

log = logging.getLogger(__name__)

# libx264 first; the Pi 4's hardware encoder, then MPEG-4 part 2, when it is missing.
ENCODERS = ("libx264", "h264_v4l2m2m", "mpeg4")
ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "crf": "20"},
    "h264_v4l2m2m": {},
    "mpeg4": {"qscale": "3"},
}


def _load(path: Path) -> Image.Image | None:
    try:
        with Image.open(path) as img:
            return img.convert("RGB")  # also forces the decode, inside the try
    except (OSError, UnidentifiedImageError) as err:
        log.warning("timelapse render: %s left out (%s)", path.name, err)
        return None


def _open_stream(
    container: av.container.OutputContainer, rate: Fraction, width: int, height: int
) -> tuple[av.VideoStream, str]:
    errors = []
    for name in ENCODERS:
        try:
            stream = container.add_stream(name, rate=rate)
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = dict(ENCODER_OPTIONS.get(name, {}))
            stream.codec_context.open()
            return stream, name
        except (av.FFmpegError, ValueError) as err:
            errors.append(f"{name}: {err}")
    raise TimelapseFailure("no video encoder could be opened: " + "; ".join(errors))


def render_day(folder: Path, day: dt.date, fps: float, cam_id: str) -> TimelapseVideo:
    """Encode the day's stills in capture order, one frame each, into ``video_name``.

    The video takes the first still's size (even sides); stills of another size are
    scaled to it, unreadable ones are left out and counted. The file is written under
    a temporary name and renamed when complete.
    """
    stills = day_stills(folder, day)
    if not stills:
        raise NoStills(f"no timelapse stills for {day.isoformat()} on this node")
    rel = video_name(cam_id, day)
    out = folder / rel
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    rate = fps_fraction(fps)
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
                    stream, encoder = _open_stream(container, rate, width, height)
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
