"""Recording and manifest names, and the manifest file itself."""

from __future__ import annotations

import time
from pathlib import Path

from node_agent.fsutil import atomic_write_bytes
from node_agent.schemas import Manifest


def recording_name(session_id: str, cam_id: str, start_ns: int) -> str:
    """``{SESSION_ID}_{CAM_ID}_{YYYYMMDD}_{HHMMSS}.mp4`` with the UTC start time."""
    stamp = time.strftime("%Y%m%d_%H%M%S", time.gmtime(start_ns // 1_000_000_000))
    return f"{session_id}_{cam_id}_{stamp}.mp4"


def manifest_name(session_id: str, cam_id: str) -> str:
    """``{SESSION_ID}_{CAM_ID}.json``."""
    return f"{session_id}_{cam_id}.json"


def write_manifest(directory: Path, manifest: Manifest) -> Path:
    """Write the manifest beside its recording, atomically."""
    path = directory / manifest_name(manifest.session_id, manifest.cam_id)
    atomic_write_bytes(path, manifest.model_dump_json(indent=2).encode() + b"\n")
    return path


def read_manifest(path: Path) -> Manifest:
    """Load a manifest file."""
    return Manifest.model_validate_json(path.read_bytes())
