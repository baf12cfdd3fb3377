"""Where stills go and which days go away: pure rules, and the few file operations behind them.

Stills are ``<folder>/YYYY/MM/DD/HHMMSS.jpg`` in the node's local time (a day folder
is a local day, which is what a person renders or deletes). Clean-up removes whole day
folders, oldest first, and never today's.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from node_agent.naming import STILL_NAME, day_dir
from node_agent.timelapse.schemas import DiskState, TimelapseDisk

log = logging.getLogger(__name__)

_YEAR, _TWO = re.compile(r"^\d{4}$"), re.compile(r"^\d{2}$")


def disk_state(used_percent: float, warn_percent: float, stop_percent: float) -> DiskState:
    """ok below ``warn_percent``, warning from it, full from ``stop_percent``."""
    if used_percent >= stop_percent:
        return DiskState.full
    if used_percent >= warn_percent:
        return DiskState.warning
    return DiskState.ok


@dataclass(frozen=True)
class DayUsage:
    """One day folder and the bytes its stills take."""

    day: dt.date
    size_bytes: int = 0


def plan_day_deletions(
    days: Sequence[DayUsage],
    today: dt.date,
    retention_days: int,
    used_bytes: int = 0,
    total_bytes: int = 0,
    target_percent: float | None = None,
) -> list[dt.date]:
    """The day folders to delete, oldest first.

    Days older than the last ``retention_days`` (today counts as one) go; then, while
    disk use (``used_bytes`` less what is planned) is at or above ``target_percent``,
    the oldest remaining days go too. Today and later days are never listed.
    """
    if retention_days < 1:
        raise ValueError("retention_days counts today, so it is at least 1")
    past = sorted((d for d in days if d.day < today), key=lambda d: d.day)
    cutoff = today - dt.timedelta(days=retention_days)
    plan = [d for d in past if d.day <= cutoff]
    rest = [d for d in past if d.day > cutoff]
    if target_percent is not None and total_bytes > 0:
        used = used_bytes - sum(d.size_bytes for d in plan)
        for d in rest:
            if used * 100 / total_bytes < target_percent:
                break
            plan.append(d)
            used -= d.size_bytes
    return [d.day for d in plan]


# -- the file operations behind the rules ------------------------------------------------------


def list_days(folder: Path) -> list[dt.date]:
    """Every ``YYYY/MM/DD`` folder under ``folder`` that names a real date, oldest first."""
    days: list[dt.date] = []
    for year in _subdirs(folder, _YEAR):
        for month in _subdirs(year, _TWO):
            for day in _subdirs(month, _TWO):
                try:
                    days.append(dt.date(int(year.name), int(month.name), int(day.name)))
                except ValueError:
                    continue  # e.g. 2026/02/30: not ours, left alone
    return sorted(days)


def _subdirs(path: Path, pattern: re.Pattern[str]) -> list[Path]:
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        Path(e.path) for e in entries if e.is_dir(follow_symlinks=False) and pattern.match(e.name)
    ]


def day_stills(folder: Path, day: dt.date) -> list[Path]:
    """The stills of one day in capture order (``HHMMSS.jpg`` sorts by time)."""
    where = folder / day_dir(day)
    try:
        names = [e.name for e in os.scandir(where) if e.is_file() and STILL_NAME.match(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [where / n for n in sorted(names)]


def day_size_bytes(folder: Path, day: dt.date) -> int:
    """Bytes taken by the files in one day folder."""
    total = 0
    for entry in os.scandir(folder / day_dir(day)):
        if entry.is_file(follow_symlinks=False):
            total += entry.stat(follow_symlinks=False).st_size
    return total


def delete_day(folder: Path, day: dt.date) -> None:
    """Remove one day folder, then its month and year folders if they are left empty."""
    target = folder / day_dir(day)
    shutil.rmtree(target)
    for parent in (target.parent, target.parent.parent):
        try:
            parent.rmdir()
        except OSError:
            break  # not empty (or already gone): stop climbing


def latest_still(folder: Path) -> Path | None:
    """The newest still on disk, or None."""
    for day in reversed(list_days(folder)):
        stills = day_stills(folder, day)
        if stills:
            return stills[-1]
    return None


def read_disk(folder: Path, warn_percent: float, stop_percent: float) -> TimelapseDisk | None:
    """Disk use of the filesystem holding ``folder`` (None when it cannot be read)."""
    try:
        usage = shutil.disk_usage(folder)
    except OSError as err:
        log.debug("cannot read disk use of %s: %s", folder, err)
        return None
    used_percent = usage.used / usage.total * 100 if usage.total else 100.0
    return TimelapseDisk(
        path=str(folder),
        total_bytes=usage.total,
        free_bytes=usage.free,
        used_percent=round(used_percent, 3),
        warn_percent=warn_percent,
        stop_percent=stop_percent,
        state=disk_state(used_percent, warn_percent, stop_percent),
    )


def apply_retention(
    folder: Path,
    today: dt.date,
    retention_days: int,
    target_percent: float | None = None,
) -> list[dt.date]:
    """Delete the day folders ``plan_day_deletions`` picks; returns the days deleted."""
    days = list_days(folder)
    used = total = 0
    usages = [DayUsage(d) for d in days]
    if target_percent is not None:
        usage = shutil.disk_usage(folder)
        used, total = usage.used, usage.total
        if total and used * 100 / total >= target_percent:
            # Sizes are only worth a walk of the files when space has to be freed.
            usages = [DayUsage(d, day_size_bytes(folder, d)) for d in days if d < today]
    deleted = []
    for day in plan_day_deletions(usages, today, retention_days, used, total, target_percent):
        try:
            delete_day(folder, day)
        except OSError as err:
            log.error("timelapse clean-up could not delete %s: %s", folder / day_dir(day), err)
            continue
        deleted.append(day)
    return deleted
