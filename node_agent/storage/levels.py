"""The disk's level and alarm: pure functions of free space, the thresholds and the footage."""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.schemas import DiskLevel


@dataclass(frozen=True, slots=True)
class Footage:
    """Totals of one scan of the recordings folder (the recording in progress left out)."""

    unoffloaded_bytes: int = 0
    unoffloaded_count: int = 0
    offloaded_bytes: int = 0  # what retention may delete
    offloaded_count: int = 0
    oldest_unoffloaded_ns: int | None = None


def free_percent(free_bytes: int, total_bytes: int) -> float:
    """Free space as a percentage of the disk (0 for a disk of no size)."""
    return 100.0 * free_bytes / total_bytes if total_bytes > 0 else 0.0


def disk_level(free_pct: float, warn_percent: float, critical_percent: float) -> DiskLevel:
    """ok, warn under ``warn_percent``, critical under ``critical_percent``."""
    if free_pct < critical_percent:
        return DiskLevel.critical
    if free_pct < warn_percent:
        return DiskLevel.warn
    return DiskLevel.ok


def size_text(n: int) -> str:
    """Bytes for a person: '812 kB', '3.4 MB', '1.20 GB'."""
    if n >= 1_000_000_000:
        return f"{n / 1e9:.2f} GB"
    if n >= 1_000_000:
        return f"{n / 1e6:.1f} MB"
    return f"{n / 1e3:.0f} kB"


def full_of_unoffloaded(footage: Footage) -> str:
    """What to tell a person when only footage without a copy elsewhere is left."""
    return (
        f"the disk is full of footage not yet offloaded ({footage.unoffloaded_count} "
        f"recording(s), {size_text(footage.unoffloaded_bytes)}) and nothing was deleted: "
        "offload them (camfleet offload, or POST /api/v1/offload on the coordinator), then "
        "delete the offloaded ones"
    )


def critical_refusal(
    free_pct: float, critical_percent: float, footage: Footage, free_bytes: int
) -> str:
    """Why a start is refused at the critical level, with what to do about it."""
    return (
        f"only {free_pct:.1f} % of the disk is free ({size_text(free_bytes)}), under the "
        f"critical {critical_percent:g} %: offload and delete recordings before recording "
        f"({footage.unoffloaded_count} not yet offloaded, {size_text(footage.unoffloaded_bytes)})"
    )


def standing_alarm(level: DiskLevel, footage: Footage, stopped_alarm: str | None) -> str | None:
    """The alarm the status shows now.

    A recording stopped because the disk was full keeps its alarm until there is room
    again (the housekeeper clears it); at the critical level with nothing offloaded left
    to delete, the disk is full of footage not yet offloaded even without a stop.
    """
    if stopped_alarm is not None:
        return stopped_alarm
    if level == DiskLevel.critical and footage.offloaded_count == 0 and footage.unoffloaded_count:
        return f"starts are refused: {full_of_unoffloaded(footage)}"
    return None
