"""The recordings folder: listing with manifests, and safe resolution of a requested name."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from node_agent.errors import BadRequest, NotFound
from node_agent.naming import SERVED_NAME
from node_agent.recorder.manifest import read_manifest
from node_agent.schemas import Manifest, RecordingEntry

# What the file system takes for one name (NAME_MAX on Linux).
MAX_NAME_BYTES = 255


def resolve_recording(directory: Path, name: str) -> Path:
    """The path of ``name`` inside ``directory``; never a file outside it."""
    if len(name.encode()) > MAX_NAME_BYTES:
        raise BadRequest(
            f"a recording name is at most {MAX_NAME_BYTES} bytes; this one has {len(name.encode())}"
        )
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise BadRequest(f"{name!r} is not a recording name: path parts are not allowed")
    if not SERVED_NAME.match(name):
        raise BadRequest(
            f"{name!r} is not a recording name: expected letters, digits, '-' and '_' "
            "ending in .mp4, .json or .jpg"
        )
    root = directory.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        raise NotFound(f"no recording named {name} on this node")
    return path


def manifests_by_file(directory: Path) -> dict[str, Manifest]:
    """Every readable manifest in ``directory``, keyed by the recording it describes."""
    found: dict[str, Manifest] = {}
    for path in directory.glob("*.json"):
        try:
            manifest = read_manifest(path)
        except (OSError, ValueError, ValidationError):
            continue  # a foreign or damaged JSON file is not a manifest
        found[manifest.file_name] = manifest
    return found


def list_recordings(directory: Path, active_file: str | None) -> list[RecordingEntry]:
    """Every MP4 in ``directory`` with its manifest, oldest first."""
    manifests = manifests_by_file(directory)
    entries = []
    for path in directory.glob("*.mp4"):
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        manifest = manifests.get(path.name)
        entries.append(
            RecordingEntry(
                name=path.name,
                size_bytes=st.st_size,
                modified_ns=st.st_mtime_ns,
                complete=manifest is not None and path.name != active_file,
                manifest=manifest,
            )
        )
    entries.sort(key=lambda e: (e.modified_ns, e.name))
    return entries
