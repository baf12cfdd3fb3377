"""Retention's pure core: which recordings to delete, given what is on the disk.

``plan_deletions`` takes an immutable description of the recordings (no I/O) and
answers the ordered list to delete. Only a recording that is offloaded (its copy
elsewhere confirmed by SHA-256), has a manifest and is not being recorded may ever be
in a plan; the housekeeper (``housekeeper.py``) applies the plan under its lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """One recording as the housekeeper last saw it."""

    name: str  # the .mp4
    size_bytes: int
    started_ns: int  # first frame (from the manifest), else the file's mtime: the age key
    offloaded: bool  # the manifest says a copy elsewhere was confirmed
    active: bool  # the recorder is writing it
    manifest: str | None  # the manifest's file name; None when it has none
    companions: tuple[str, ...] = ()  # Lock View still and other files beside it
    companion_bytes: int = 0  # their size, the manifest's included

    @property
    def deletable(self) -> bool:
        """Offloaded, described by a manifest, and not being written."""
        return self.offloaded and self.manifest is not None and not self.active

    @property
    def total_bytes(self) -> int:
        """What deleting it frees: the video, its manifest and its companions."""
        return self.size_bytes + self.companion_bytes


# A deletion is the recording as planned: its video, its manifest and its companions.
Deletion = RecordingFile

_AGE = attrgetter("started_ns", "name")
_STARTED = attrgetter("started_ns")


def target_free_bytes(total_bytes: int, free_percent: float, min_free_bytes: int = 0) -> int:
    """Free bytes retention aims for: ``free_percent`` of the disk, at least ``min_free_bytes``."""
    return max(math.ceil(total_bytes * free_percent / 100), min_free_bytes)


def oldest_first(files: Iterable[RecordingFile]) -> list[RecordingFile]:
    """The recordings by age, oldest first (name breaks ties, so the order is total)."""
    return sorted(files, key=_AGE)


def plan_deletions(
    files: Sequence[RecordingFile],
    free_bytes: int,
    total_bytes: int,
    target_free_percent: float,
    delete_after_confirm: bool = False,
    min_free_bytes: int = 0,
) -> list[Deletion]:
    """The recordings to delete, oldest first.

    Normally: the oldest deletable recordings until ``free_bytes`` reaches the target
    (``target_free_percent`` of ``total_bytes``, at least ``min_free_bytes``), and not
    one more. With ``delete_after_confirm`` (also the operator's "delete every
    offloaded recording"): every deletable recording, whatever the free space.
    Un-offloaded, active and manifest-less recordings are never in the plan, even when
    the target cannot be reached without them.
    """
    need = target_free_bytes(total_bytes, target_free_percent, min_free_bytes) - free_bytes
    if need <= 0 and not delete_after_confirm:
        return []
    # The test of RecordingFile.deletable, inlined: this runs over every file on the disk.
    candidates = [f for f in files if f.offloaded and not f.active and f.manifest is not None]
    _sort_oldest_first(candidates)
    if delete_after_confirm:
        return candidates
    for i, f in enumerate(candidates):
        need -= f.size_bytes + f.companion_bytes
        if need <= 0:
            return candidates[: i + 1]
    return candidates


def _sort_oldest_first(files: list[RecordingFile]) -> None:
    """``oldest_first`` in place, several times faster on 100,000 files: the sort compares
    floats (CPython's fastest key), not big integers or tuples. float() keeps the order of
    the nanosecond ages; ages equal as floats (within 256 ns, or truly equal: rare) are
    then put in exact (age, name) order."""
    ages = list(map(float, map(_STARTED, files)))  # in list order: cheap on the memory
    distinct = len(set(ages)) == len(ages)
    files.sort(key=_float_age)
    if distinct:
        return
    ages = list(map(float, map(_STARTED, files)))
    i = 0
    while i < len(files):
        j = i + 1
        while j < len(files) and ages[j] == ages[i]:
            j += 1
        if j - i > 1:
            files[i:j] = sorted(files[i:j], key=_AGE)
        i = j


def _float_age(f: RecordingFile) -> float:
    return float(f.started_ns)
