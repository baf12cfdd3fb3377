"""The agent's daily summary: today's stills, the day's video, the disk, the backup and
the day's problems, read from the node's status (caches) and the notifier's history."""

from __future__ import annotations

import datetime as dt

from common.notify import DailySummary
from node_agent.schemas import NodeStatus


def backup_state(status: NodeStatus) -> str:
    """The backup line: the dashcam's uploads to the NAS, when it runs."""
    d = status.dashcam
    if d is None:
        return "Nothing to back up"
    if d.pending_upload == 0 and d.failed_total == 0:
        return "Complete"
    if d.pending_upload == 0:
        return f"Complete ({d.failed_total} failed attempt(s) retried)"
    why = f": {d.last_error}" if d.last_error else ""
    return f"{d.pending_upload} file(s) waiting for the NAS{why}"


def agent_summary(
    device_id: str, day: dt.date, status: NodeStatus, problems: list[str]
) -> DailySummary:
    """What the summary says for ``day`` from ``status``."""
    t, disk = status.timelapse, status.disk
    video = t.last_video if t is not None else None
    used = 100.0 - disk.free_percent if disk.total_bytes > 0 else None
    return DailySummary(
        device_id=device_id,
        date=day,
        photos_captured=t.captures_today if t is not None else None,
        video_seconds=video.duration_s if video is not None and video.day == str(day) else None,
        disk_used_percent=used,
        disk_free_bytes=disk.free_bytes if disk.total_bytes > 0 else None,
        backup=backup_state(status),
        errors=problems,
    )
