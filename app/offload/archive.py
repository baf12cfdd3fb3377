"""The archive folder: where each file goes, safe names, durable writes, and hashing.

Layout: ``{archive_dir}/{SESSION_ID}/{file}`` with the manifest
(``{SESSION_ID}_{CAM_ID}.json``) and the Lock View still beside it; a transfer under way
is ``.{file}.part`` in the same folder; a copy that did not match is ``{file}.corrupt-{n}``.
Every name comes from a node's manifest, so each is checked before it becomes a path.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from app.fleet.wire import SESSION_ID_PATTERN, Manifest
from common.fsutil import fsync_dir

# What the agent names its files (one path component, its own alphabet).
VIDEO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,250}\.mp4$")
STILL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,250}\.jpg$")
CAM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_SESSION = re.compile(SESSION_ID_PATTERN)
HASH_CHUNK = 1024 * 1024


class UnsafeName(ValueError):
    """A name from a node that must not become a path."""


@dataclass(frozen=True)
class ArchivePaths:
    """Where one recording lives in the archive."""

    root: Path
    session_id: str
    file_name: str
    manifest_name: str
    still_name: str | None

    @property
    def folder(self) -> Path:
        return self.root / self.session_id

    @property
    def video(self) -> Path:
        return self.folder / self.file_name

    @property
    def part(self) -> Path:
        return self.folder / f".{self.file_name}.part"

    @property
    def manifest(self) -> Path:
        return self.folder / self.manifest_name

    @property
    def still(self) -> Path | None:
        return self.folder / self.still_name if self.still_name else None

    @property
    def relative(self) -> str:
        """What the database keeps: ``SESSION_ID/file``."""
        return f"{self.session_id}/{self.file_name}"


def paths_for(root: Path, m: Manifest) -> ArchivePaths:
    """The archive paths of a recording, or UnsafeName when its manifest's names are not
    the agent's own (nothing a node says may name a file outside its session folder)."""
    if not _SESSION.match(m.session_id):
        raise UnsafeName(f"session id {m.session_id!r:.80} is not a session id")
    if not VIDEO_NAME.match(m.file_name):
        raise UnsafeName(f"file name {m.file_name!r:.80} is not a recording name")
    if not CAM_ID.match(m.cam_id):
        raise UnsafeName(f"camera id {m.cam_id!r:.40} is not a camera id")
    still = m.lockview_file
    if still is not None and not STILL_NAME.match(still):
        still = None  # a still with a strange name is left on the node
    return ArchivePaths(root, m.session_id, m.file_name, f"{m.session_id}_{m.cam_id}.json", still)


def make_folder(folder: Path) -> None:
    """Create a session folder durably (its entry in the archive root is fsynced)."""
    if folder.is_dir():
        return
    folder.mkdir(parents=True, exist_ok=True)
    fsync_dir(folder.parent)


def set_aside(path: Path, video: Path) -> Path:
    """Rename ``path`` to the first free ``{video}.corrupt-{n}`` (durably) and return it."""
    n = 1
    while True:
        target = video.with_name(f"{video.name}.corrupt-{n}")
        if not target.exists():
            break
        n += 1
    os.replace(path, target)
    fsync_dir(video.parent)
    return target


def sha256_of_fd(fd: int, length: int) -> hashlib._Hash:
    """The SHA-256 state after the first ``length`` bytes of an open file."""
    h = hashlib.sha256()
    done = 0
    while done < length:
        chunk = os.pread(fd, min(HASH_CHUNK, length - done), done)
        if not chunk:
            break
        h.update(chunk)
        done += len(chunk)
    return h


def sha256_of(path: Path) -> str:
    """A whole file's SHA-256."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return sha256_of_fd(fd, os.fstat(fd).st_size).hexdigest()
    finally:
        os.close(fd)


def copy_place(path: Path) -> str:
    """``coordinator:{hostname}:{path}``, printable ASCII as the confirm's ``copied_to``."""
    text = f"coordinator:{socket.gethostname()}:{path}"
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:512]


def intact(path: Path, size: int) -> bool:
    """The archived file is still there, whole (it was verified when it came)."""
    try:
        return path.stat().st_size == size
    except FileNotFoundError:
        return False


def install(part: Path, video: Path) -> None:
    """The verified ``.part`` becomes the file, durably."""
    os.replace(part, video)
    fsync_dir(video.parent)


def drop(path: Path) -> None:
    """A file that is not needed (a ``.part`` whose file is already in place), durably."""
    path.unlink(missing_ok=True)
    fsync_dir(path.parent)
