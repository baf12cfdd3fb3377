"""Copy new footage off the mounted camera into staging, and clean the camera afterwards.

``Ingestor.ingest`` walks the mounted card (footage extensions only; no hidden files, no
symlinks; bounded depth and count), skips every file a manifest already covers (same
device, path, size and time), refuses a file that would not fit in staging (with a
reason), copies the rest while hashing (``copy_hashed``) to
``{device_id}/{safe path}`` and writes its manifest only after the copy is in place.

``Ingestor.clean_camera`` is the only code that deletes from the camera: a file whose
manifest says the NAS's own SHA-256 matched (``offloaded``) is hashed again on the camera,
and deleted only if those bytes are still the confirmed ones. Nothing unconfirmed is ever
deleted; a file that changed on the camera is kept and said so.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from common.fsutil import fsync_dir
from node_agent.dashcam.copy import copy_hashed, sha256_file
from node_agent.dashcam.detect import FoundCamera
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.schemas import IngestManifest

log = logging.getLogger(__name__)

MAX_DEPTH = 8  # folders below the card's root (DCIM/100MEDIA/... is 2)
MAX_FILES = 20_000  # files looked at per walk: a corrupt card never loops us forever
RESERVE_BYTES = 64 << 20  # kept free in staging beyond the file that is copied
MAX_PART = 128  # STAGED_PATH: 128 characters a part, 16 parts


@dataclass(frozen=True)
class CameraFile:
    """One footage file on the camera."""

    rel: str  # posix path under the card's root, as the camera names it
    size_bytes: int
    mtime_ns: int


@dataclass
class IngestResult:
    """What one ingest did."""

    copied: list[IngestManifest] = field(default_factory=list)
    skipped: int = 0  # already ingested
    refused: list[str] = field(default_factory=list)  # reasons, one per file not copied


@dataclass
class CleanResult:
    """What one camera clean-up did."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # reasons


def walk_camera(root: Path, extensions: list[str]) -> list[CameraFile]:
    """Footage files under ``root``, sorted by path (see the module docstring)."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    found: list[CameraFile] = []
    stack: list[tuple[Path, int]] = [(root, 0)]
    while stack and len(found) < MAX_FILES:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as err:
            log.warning("cannot read %s on the camera: %s", folder, err)
            continue
        for entry in entries:
            if entry.name.startswith(".") or entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_DEPTH:
                    stack.append((Path(entry.path), depth + 1))
            elif entry.is_file(follow_symlinks=False):
                if Path(entry.name).suffix.lower() not in exts:
                    continue
                st = entry.stat(follow_symlinks=False)
                rel = Path(entry.path).relative_to(root).as_posix()
                found.append(CameraFile(rel, st.st_size, st.st_mtime_ns))
                if len(found) >= MAX_FILES:
                    log.warning("more than %d files on the camera: the rest next time", MAX_FILES)
                    break
    found.sort(key=lambda f: f.rel)
    return found


def safe_part(part: str) -> str:
    """One path part in the STAGED_PATH alphabet: other characters become ``_``, no
    leading dot, dash or underscore, at most 128 characters (the extension kept)."""
    stem, ext = os.path.splitext(re.sub(r"[^A-Za-z0-9_.-]", "_", part))
    stem, ext = stem.lstrip("._-") or "file", ext[:16]
    safe = stem[: MAX_PART - len(ext)].rstrip(".") + ext
    return safe


def staged_path_for(device_id: str, rel: str, taken: set[str]) -> str:
    """``{device_id}/{safe parts}``, not in ``taken`` (a ``-1``, ``-2`` ... before the
    extension when two camera paths map to one name, or a camera reused a name)."""
    parts = [safe_part(p) for p in PurePosixPath(rel).parts][-15:]
    base = "/".join([device_id, *parts])
    if base not in taken:
        return base
    head, _, name = base.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    n = 1
    while True:
        suffix = f"-{n}"
        trimmed = stem[: MAX_PART - len(suffix) - (len(ext) + 1 if ext else 0)]
        candidate = f"{head}/{trimmed}{suffix}" + (f".{ext}" if ext else "")
        if candidate not in taken:
            return candidate
        n += 1


def staging_free_bytes(path: Path) -> int:
    """Free bytes where ``path`` lives."""
    return shutil.disk_usage(path).free


class Ingestor:
    """Copies from a mounted camera into the ledger's staging folder."""

    def __init__(
        self,
        ledger: Ledger,
        node_id: str,
        cam_id: str,
        software_version: str,
        extensions: list[str],
        *,
        free_bytes: Callable[[Path], int] = staging_free_bytes,
        reserve_bytes: int = RESERVE_BYTES,
        abort: Callable[[], bool] = lambda: False,
        on_copied: Callable[[IngestManifest], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.node_id = node_id
        self.cam_id = cam_id
        self.software_version = software_version
        self.extensions = extensions
        self.free_bytes = free_bytes
        self.reserve_bytes = reserve_bytes
        self.abort = abort
        self.on_copied = on_copied

    def ingest(self, root: Path, camera: FoundCamera) -> IngestResult:
        """Copy every new footage file under ``root`` (see the module docstring)."""
        result = IngestResult()
        manifests = self.ledger.manifests()
        seen = {
            (m.device_id, m.source_path, m.source_size_bytes, m.source_mtime_ns) for m in manifests
        }
        taken = {m.staged_path for m in manifests}
        for f in walk_camera(root, self.extensions):
            if self.abort():
                break
            if (camera.device_id, f.rel, f.size_bytes, f.mtime_ns) in seen:
                result.skipped += 1
                continue
            staged = staged_path_for(camera.device_id, f.rel, taken)
            free = self.free_bytes(self.ledger.staging)
            if f.size_bytes + self.reserve_bytes > free:
                reason = (
                    f"{f.rel}: {f.size_bytes} bytes do not fit in {self.ledger.staging} "
                    f"({free} bytes free, {self.reserve_bytes} kept free); it stays on the "
                    "camera until uploads make room"
                )
                log.warning("%s", reason)
                result.refused.append(reason)
                continue
            m = self.copy_one(root, f, camera, staged)
            taken.add(staged)
            seen.add((camera.device_id, f.rel, f.size_bytes, f.mtime_ns))
            result.copied.append(m)
            if self.on_copied is not None:
                self.on_copied(m)
        return result

    def copy_one(
        self, root: Path, f: CameraFile, camera: FoundCamera, staged: str
    ) -> IngestManifest:
        """Copy ``f`` to ``staged`` while hashing it, then write its manifest (one step of
        ``ingest``; the bench and the upload tests stage files with it too)."""
        dst = self.ledger.staging / staged
        size, sha = copy_hashed(root / f.rel, dst, abort=self.abort)
        m = IngestManifest(
            node_id=self.node_id,
            cam_id=self.cam_id,
            device_id=camera.device_id,
            device=camera.description[:256],
            source_path=f.rel,
            source_size_bytes=f.size_bytes,
            source_mtime_ns=f.mtime_ns,
            staged_path=staged,
            size_bytes=size,
            sha256=sha,
            ingested_at_ns=time.time_ns(),
            software_version=self.software_version,
        )
        self.ledger.write(m)  # after the copy: a manifest always has its bytes
        log.info("ingested %s -> %s (%d bytes, sha256 %s)", f.rel, staged, size, sha)
        return m

    def clean_camera(
        self,
        root: Path,
        camera: FoundCamera,
        make_writable: Callable[[], None],
    ) -> CleanResult:
        """Delete from the camera each file confirmed on the NAS whose bytes still hash to
        the confirmed SHA-256 (``make_writable`` remounts read-write, once, if needed)."""
        result = CleanResult()
        verified: list[tuple[IngestManifest, Path]] = []
        for m in self.ledger.manifests():
            if m.device_id != camera.device_id or not m.offloaded or m.camera_deleted_at_ns:
                continue
            if self.abort():
                break
            path = root / m.source_path
            why = self._why_keep(root, path, m)
            if why:
                result.kept.append(f"{m.source_path}: {why}")
                continue
            verified.append((m, path))
        if not verified:
            return result
        make_writable()
        for m, path in verified:
            path.unlink()
            fsync_dir(path.parent)
            self.ledger.write(m.model_copy(update={"camera_deleted_at_ns": time.time_ns()}))
            log.info("deleted %s from the camera: its copy on the NAS is confirmed", m.source_path)
            result.deleted.append(m.source_path)
        return result

    def _why_keep(self, root: Path, path: Path, m: IngestManifest) -> str | None:
        """Why the camera's copy of ``m`` must stay, or None when it may go."""
        try:
            st = path.lstat()
        except FileNotFoundError:
            return "no longer on the camera"
        except OSError as err:
            return f"cannot read it ({err})"
        if (
            not path.resolve().is_relative_to(root.resolve())
            or not path.is_file()
            or path.is_symlink()
        ):
            return "not a plain file under the camera's root: kept"
        if (st.st_size, st.st_mtime_ns) != (m.source_size_bytes, m.source_mtime_ns):
            return "size or time changed since it was copied: kept"
        try:
            sha = sha256_file(path)
        except OSError as err:
            return f"cannot hash it ({err}): kept"
        if sha != m.sha256:
            return f"its bytes hash to {sha[:12]}..., not the confirmed {m.sha256[:12]}...: kept"
        return None
