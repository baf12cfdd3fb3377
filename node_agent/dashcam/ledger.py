"""The staging folder: staged files and their manifests, and the one lock over both.

Layout (``paths.local_staging``)::

    .lock                              flock: one ingest/upload run at a time
    .manifests/{staged_path}.json      one IngestManifest per file ever ingested
    {staged_path}                      the staged copy, until the NAS's copy is confirmed

``staged_path`` is ``{device_id}/{path on the camera, each part made safe}``. Every write
is temp + fsync + rename + folder fsync: a power cut leaves the old manifest or the new.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.fsutil import atomic_write_bytes
from node_agent.dashcam.schemas import IngestManifest

MANIFESTS = ".manifests"
LOCK = ".lock"


class StagingBusy(RuntimeError):
    """Another run holds the staging folder's lock."""


class Ledger:
    """Reads and writes the staging folder's manifests."""

    def __init__(self, staging: Path) -> None:
        self.staging = staging
        self.manifest_dir = staging / MANIFESTS

    def staged_file(self, m: IngestManifest) -> Path:
        """Where ``m``'s staged copy is (or was)."""
        return self.staging / m.staged_path

    def manifest_path(self, staged_path: str) -> Path:
        """Where the manifest of ``staged_path`` is kept."""
        return self.manifest_dir / f"{staged_path}.json"

    def write(self, m: IngestManifest) -> None:
        """Write (or rewrite) ``m`` atomically."""
        path = self.manifest_path(m.staged_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, m.model_dump_json(indent=2).encode())

    def read(self, staged_path: str) -> IngestManifest | None:
        """The manifest of ``staged_path``, or None if there is none (or it is unreadable)."""
        try:
            return IngestManifest.model_validate_json(self.manifest_path(staged_path).read_bytes())
        except (OSError, ValueError):
            return None

    def manifests(self) -> list[IngestManifest]:
        """Every manifest, oldest ingest first; unreadable ones are skipped."""
        found: list[IngestManifest] = []
        if not self.manifest_dir.is_dir():
            return found
        for path in self.manifest_dir.rglob("*.json"):
            if path.name.startswith("."):
                continue  # a temp file of a write in progress
            try:
                found.append(IngestManifest.model_validate_json(path.read_bytes()))
            except (OSError, ValueError):
                continue
        found.sort(key=lambda m: (m.ingested_at_ns, m.staged_path))
        return found

    def index(self) -> dict[tuple[str, str], IngestManifest]:
        """The manifests by (device_id, source_path): what was already ingested."""
        return {(m.device_id, m.source_path): m for m in self.manifests()}

    def pending_upload(self) -> list[IngestManifest]:
        """Staged files with no confirmed copy on the NAS, oldest first."""
        return [m for m in self.manifests() if not m.offloaded and m.staging_deleted_at_ns is None]

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the staging folder's flock; StagingBusy at once if another run has it."""
        self.staging.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.staging / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StagingBusy(
                    f"{self.staging} is locked by another camfleet dashcam run"
                ) from None
            yield
        finally:
            os.close(fd)
