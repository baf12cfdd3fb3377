"""Disk telemetry: free space on the recordings disk and minutes left at a bitrate."""

from __future__ import annotations

import os
from pathlib import Path

from node_agent.schemas import DiskStatus
from node_agent.telemetry.reading import Reading


def minutes_left(free_bytes: int, bitrate_bps: int) -> float:
    """Minutes of video that fit in ``free_bytes`` at ``bitrate_bps``."""
    if bitrate_bps <= 0:
        return float("inf")
    return free_bytes * 8 / bitrate_bps / 60


def free_bytes(path: Path) -> int:
    """Bytes an ordinary user may still write on the filesystem holding ``path``."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def read_disk(path: Path, bitrate_bps: int) -> DiskStatus:
    """Free and total bytes of the filesystem holding ``path``."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    return DiskStatus(
        path=str(path),
        total_bytes=st.f_blocks * st.f_frsize,
        free_bytes=free,
        minutes_left=round(minutes_left(free, bitrate_bps), 1),
    )


def collect_disk(path: Path, bitrate_bps: int) -> Reading[DiskStatus]:
    """``read_disk``, or why the disk could not be read (missing or unmounted)."""
    try:
        return Reading("disk", read_disk(path, bitrate_bps))
    except OSError as err:
        return Reading("disk", None, f"{path}: {err.strerror or err}")
