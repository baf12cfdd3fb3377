"""Applying a deletion plan to the disk: checked again file by file, video first, manifest last.

The plan was made from the last scan; just before deleting, each recording's manifest
is read again from disk (under ``MANIFEST_LOCK``) and the recording is skipped unless
it still says ``offloaded`` for this very file and the recorder is not writing it. The
videos and stills go first, the folder is fsynced, then the manifests go and the folder
is fsynced again: a crash in between leaves manifests without videos (harmless, and
cleaned up by the next retention), never a video without its manifest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from common.fsutil import fsync_dir
from node_agent.naming import SERVED_NAME
from node_agent.recorder.manifest import MANIFEST_LOCK, read_manifest
from node_agent.storage.retention import Deletion

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What a plan removed from the disk."""

    recordings: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)  # every file, in the order removed
    freed_bytes: int = 0


def still_offloaded(directory: Path, d: Deletion) -> bool:
    """The manifest on disk still says this recording was offloaded."""
    if d.manifest is None:
        return False
    try:
        manifest = read_manifest(directory / d.manifest)
    except (OSError, ValueError):
        return False
    return manifest.offloaded and manifest.file_name == d.name


def apply_plan(directory: Path, plan: Iterable[Deletion], active: str | None) -> Applied:
    """Delete each planned recording that is still offloaded and not being recorded."""
    done = Applied()
    manifests: list[str] = []
    with MANIFEST_LOCK:
        for d in plan:
            if d.name == active or d.manifest is None or not still_offloaded(directory, d):
                log.warning("retention skipped %s: no longer offloaded, or recording", d.name)
                continue
            for name in (d.name, *d.companions):
                _unlink(directory, name, done)
            done.recordings.append(d.name)
            manifests.append(d.manifest)
        if not manifests:
            return done
        fsync_dir(directory)  # the videos are gone before any manifest goes
        for name in manifests:
            _unlink(directory, name, done)
        fsync_dir(directory)
    return done


def remove_orphans(directory: Path, manifests: Iterable[str], videos_present: set[str]) -> Applied:
    """Manifests marked offloaded whose video is already gone (a delete cut short)."""
    done = Applied()
    with MANIFEST_LOCK:
        for name in manifests:
            try:
                manifest = read_manifest(directory / name)
            except (OSError, ValueError):
                continue
            if not manifest.offloaded or manifest.file_name in videos_present:
                continue
            if (directory / manifest.file_name).exists():
                continue
            if manifest.lockview_file:
                _unlink(directory, manifest.lockview_file, done)
            _unlink(directory, name, done)
        if done.removed:
            fsync_dir(directory)
    return done


def _unlink(directory: Path, name: str, done: Applied) -> None:
    if not SERVED_NAME.match(name):  # one name in this folder, never a path
        return
    path = directory / name
    try:
        size = os.stat(path, follow_symlinks=False).st_size
        path.unlink()
    except FileNotFoundError:
        return
    done.removed.append(name)
    done.freed_bytes += size
