"""The housekeeper's view of the recordings folder: one scan, kept until the next.

A scan lists the folder once (``os.scandir``), stats every file and parses only the
manifests that changed since the last scan (same name, size, mtime and inode: the
cached parse is reused), so rescanning thousands of recordings costs little more
than the listing. The status reads the last ``Scan`` and never touches the disk for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError

from node_agent.naming import RECORDING_NAME, lockview_name, manifest_name
from node_agent.recorder.manifest import read_manifest
from node_agent.schemas import Manifest
from node_agent.storage.levels import Footage
from node_agent.storage.retention import RecordingFile

_Key = tuple[int, int, int]  # size, mtime_ns, inode: a manifest file unchanged since parsed


@dataclass(frozen=True)
class Scan:
    """What one scan found; immutable, so the status may read it from any thread."""

    files: tuple[RecordingFile, ...] = ()
    footage: Footage = field(default_factory=Footage)
    manifests: dict[str, str] = field(default_factory=dict)  # recording -> manifest file
    orphans: tuple[str, ...] = ()  # offloaded manifests whose video is gone
    scanned_ns: int = 0
    took_s: float = 0.0

    def changed(self, offloaded: str | None = None, removed: Collection[str] = ()) -> Scan:
        """This scan after a confirm (``offloaded``) or deletes (``removed``), without
        rescanning the folder."""
        files = []
        for f in self.files:
            if f.name in removed:
                continue
            files.append(replace(f, offloaded=True) if f.name == offloaded else f)
        return replace(
            self,
            files=tuple(files),
            footage=footage_of(files),
            manifests={r: m for r, m in self.manifests.items() if r not in removed},
        )


@dataclass
class _Entry:
    size: int
    mtime_ns: int
    inode: int


class Inventory:
    """Scans ``directory``; remembers parsed manifests between scans."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._parsed: dict[str, tuple[_Key, Manifest | None]] = {}

    def scan(self, active: str | None) -> Scan:
        """Every recording with its manifest, offload flag and companions."""
        t0 = time.perf_counter()
        videos: dict[str, _Entry] = {}
        jsons: dict[str, _Entry] = {}
        stills: dict[str, _Entry] = {}
        for name, entry in _listing(self.directory):
            if name.endswith(".mp4"):
                videos[name] = entry
            elif name.endswith(".json"):
                jsons[name] = entry
            elif name.endswith(".jpg"):
                stills[name] = entry
        described = self._manifests(jsons)
        files = []
        for name, v in videos.items():
            found = described.get(name)
            manifest_file, m = found if found is not None else (None, None)
            companions: tuple[str, ...] = ()
            companion_bytes = 0
            if m is not None and manifest_file is not None:
                still = m.lockview_file or lockview_name(m.session_id, m.cam_id)
                if still in stills:
                    companions = (still,)
                    companion_bytes = stills[still].size
                companion_bytes += jsons[manifest_file].size
            files.append(
                RecordingFile(
                    name=name,
                    size_bytes=v.size,
                    started_ns=m.first_frame_ns if m is not None else v.mtime_ns,
                    offloaded=m is not None and m.offloaded,
                    active=name == active,
                    manifest=manifest_file,
                    companions=companions,
                    companion_bytes=companion_bytes,
                )
            )
        orphans = tuple(
            mf for rec, (mf, m) in described.items() if rec not in videos and m.offloaded
        )
        return Scan(
            files=tuple(files),
            footage=footage_of(files),
            manifests={rec: mf for rec, (mf, _m) in described.items()},
            orphans=orphans,
            scanned_ns=time.time_ns(),
            took_s=time.perf_counter() - t0,
        )

    def _manifests(self, jsons: dict[str, _Entry]) -> dict[str, tuple[str, Manifest]]:
        """Recording name -> (manifest file, manifest), parsing only what changed."""
        out: dict[str, tuple[str, Manifest]] = {}
        for gone in self._parsed.keys() - jsons.keys():
            del self._parsed[gone]
        for name, e in jsons.items():
            key = (e.size, e.mtime_ns, e.inode)
            cached = self._parsed.get(name)
            if cached is not None and cached[0] == key:
                manifest = cached[1]
            else:
                manifest = _parse(self.directory / name)
                self._parsed[name] = (key, manifest)
            if manifest is None:
                continue
            # Two JSON files naming one recording: the one under the manifest's own name wins.
            own = name == manifest_name(manifest.session_id, manifest.cam_id)
            if own or manifest.file_name not in out:
                out[manifest.file_name] = (name, manifest)
        return out


def footage_of(files: list[RecordingFile]) -> Footage:
    """Totals over the finished recordings (the one being written is left out)."""
    un_bytes = un_count = off_bytes = off_count = 0
    oldest: int | None = None
    for f in files:
        if f.active:
            continue
        if f.offloaded and f.manifest is not None:
            off_bytes += f.total_bytes
            off_count += 1
        else:
            un_bytes += f.total_bytes
            un_count += 1
            oldest = f.started_ns if oldest is None else min(oldest, f.started_ns)
    return Footage(un_bytes, un_count, off_bytes, off_count, oldest)


def manifest_for(directory: Path, name: str, known: dict[str, str]) -> Path | None:
    """The manifest of recording ``name``: by the naming rule, else as the last scan found it."""
    if (m := RECORDING_NAME.match(name)) is not None:
        path = directory / manifest_name(m["session"], m["cam"])
        parsed = _parse(path)
        if parsed is not None and parsed.file_name == name:
            return path
    if name in known:
        path = directory / known[name]
        parsed = _parse(path)
        if parsed is not None and parsed.file_name == name:
            return path
    return None


def _parse(path: Path) -> Manifest | None:
    try:
        return read_manifest(path)
    except (OSError, ValueError, ValidationError):
        return None  # gone, foreign or damaged: not a manifest


def _listing(directory: Path) -> Iterator[tuple[str, _Entry]]:
    """Visible regular files in ``directory`` (journals, temp files and clips are hidden)."""
    try:
        it = os.scandir(directory)
    except FileNotFoundError:
        return
    with it:
        for e in it:
            if e.name.startswith("."):
                continue
            try:
                if not e.is_file(follow_symlinks=False):
                    continue
                st = e.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted between the listing and the stat
            yield e.name, _Entry(st.st_size, st.st_mtime_ns, st.st_ino)
