"""Disk telemetry: free space on the recordings disk and minutes left at a bitrate."""

from __future__ import annotations

import os
from pathlib import Path

from node_agent.schemas import DiskStatus


def minutes_left(free_bytes: int, bitrate_bps: int) -> float:
    """Minutes of video that fit in ``free_bytes`` at ``bitrate_bps``."""
    if bitrate_bps <= 0:
        return float("inf")
    return free_bytes * 8 / bitrate_bps / 60


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
