"""Every file name the agent writes or serves, built and recognised in one place.

Recordings: ``{SESSION_ID}_{CAM_ID}_{YYYYMMDD}_{HHMMSS}.mp4`` beside
``{SESSION_ID}_{CAM_ID}.json`` (the manifest), ``{SESSION_ID}_{CAM_ID}_lockview.jpg``
and, while it is written, the hidden journal. Timelapse: ``YYYY/MM/DD/HHMMSS.jpg``
and ``videos/timelapse_{CAM_ID}_{YYYYMMDD}.mp4``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path, PurePosixPath

# A recording as the recorder names it (the recovery reads the start back out of it).
RECORDING_NAME = re.compile(
    r"^(?P<session>[A-Za-z0-9-]+)_(?P<cam>.+)_(?P<date>\d{8})_(?P<time>\d{6})\.mp4$"
)
# A name we serve: one path component, our own alphabet, a known extension.
SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\.(mp4|json|jpg)$")
STILL_NAME = re.compile(r"^\d{6}\.jpg$")
VIDEOS_DIR = "videos"


def recording_name(session_id: str, cam_id: str, start_ns: int) -> str:
    """``{SESSION_ID}_{CAM_ID}_{YYYYMMDD}_{HHMMSS}.mp4`` with the UTC start time."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(start_ns // 1_000_000_000))
    return f"{session_id}_{cam_id}_{stamp}.mp4"


def manifest_name(session_id: str, cam_id: str) -> str:
    """``{SESSION_ID}_{CAM_ID}.json``."""
    return f"{session_id}_{cam_id}.json"


def lockview_name(session_id: str, cam_id: str) -> str:
    """``{SESSION_ID}_{CAM_ID}_lockview.jpg``."""
    return f"{session_id}_{cam_id}_lockview.jpg"


def journal_path(recording: Path) -> Path:
    """Where a recording's journal lives (hidden, beside it)."""
    return recording.with_name(f".{recording.name}.journal.json")


def selftest_clip_name(stamp: str) -> str:
    """The self-test's hidden clip, never listed as a recording."""
    return f".selftest-{stamp}.mp4"


def still_path(t: dt.datetime) -> PurePosixPath:
    """``YYYY/MM/DD/HHMMSS.jpg`` for a capture at ``t`` (its own fields, as given)."""
    return PurePosixPath(f"{t:%Y}", f"{t:%m}", f"{t:%d}", f"{t:%H%M%S}.jpg")


def day_dir(day: dt.date) -> PurePosixPath:
    """``YYYY/MM/DD``: the folder of one day's stills."""
    return PurePosixPath(f"{day:%Y}", f"{day:%m}", f"{day:%d}")


def video_name(cam_id: str, day: dt.date) -> str:
    """``videos/timelapse_<CAM_ID>_<YYYYMMDD>.mp4`` (relative to the timelapse folder)."""
    return f"{VIDEOS_DIR}/timelapse_{cam_id}_{day:%Y%m%d}.mp4"
