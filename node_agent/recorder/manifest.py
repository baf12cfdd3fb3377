"""The manifest file: written atomically beside its recording, read back."""

from __future__ import annotations

from pathlib import Path

from node_agent.fsutil import atomic_write_bytes
from node_agent.naming import manifest_name
from node_agent.schemas import Manifest


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write the manifest beside its recording, atomically."""
    path = directory / manifest_name(manifest.session_id, manifest.cam_id)
    atomic_write_bytes(path, manifest.model_dump_json(indent=2).encode() + b"\n")
    return path


def read_manifest(path: Path) -> Manifest:
    """Load a manifest file."""
    return Manifest.model_validate_json(path.read_bytes())
