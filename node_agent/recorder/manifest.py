"""The manifest file: written atomically beside its recording, read back, rewritten in place.

Every read-modify-write of a manifest (a Lock View taken after the stop, a confirm)
holds ``MANIFEST_LOCK``, so neither can undo the other's change.
"""

from __future__ import annotations

import threading
from pathlib import Path

from common.fsutil import atomic_write_bytes
from node_agent.naming import manifest_name
from node_agent.schemas import Manifest

MANIFEST_LOCK = threading.RLock()


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write the manifest beside its recording, atomically."""
    path = directory / manifest_name(manifest.session_id, manifest.cam_id)
    rewrite_manifest(path, manifest)
    return path


def rewrite_manifest(path: Path, manifest: Manifest) -> None:
    """Replace the manifest at ``path`` atomically and durably (temp, fsync, rename, fsync of
    the folder): a reader, or a power cut, sees the old one or the new one."""
    atomic_write_bytes(path, manifest.model_dump_json(indent=2).encode() + b"\n")


def read_manifest(path: Path) -> Manifest:
    """Load a manifest file."""
    return Manifest.model_validate_json(path.read_bytes())
