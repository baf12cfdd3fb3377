"""Confirm by checksum: a copy elsewhere has this SHA-256, so the recording is offloaded.

The manifest is rewritten atomically and durably before the answer; a wrong checksum
changes nothing; a second confirm of the same checksum changes nothing either.
"""

from __future__ import annotations

from pathlib import Path

from node_agent.errors import BadRequest, ChecksumMismatch, NoManifest, RecordingInProgress
from node_agent.recorder.manifest import MANIFEST_LOCK, read_manifest, rewrite_manifest
from node_agent.schemas import ConfirmRequest, ConfirmResult
from node_agent.storage.inventory import manifest_for
from node_agent.storage.recordings import resolve_recording


def confirm_recording(
    directory: Path,
    name: str,
    req: ConfirmRequest,
    active: str | None,
    known: dict[str, str],
    now_ns: int,
) -> ConfirmResult:
    """Mark recording ``name`` offloaded when ``req.sha256`` is its manifest's.

    BadRequest (400) for a name that is not a recording's, NotFound (404) for one not on
    this node, RecordingInProgress / NoManifest / ChecksumMismatch (409) otherwise.
    """
    resolve_recording(directory, name)
    if not name.endswith(".mp4"):
        raise BadRequest(
            f"{name} is not a video: confirm the recording's .mp4 (its manifest and Lock View "
            "still are offloaded with it)"
        )
    if name == active:
        raise RecordingInProgress(
            f"{name} is being recorded: stop the recording, then copy it and confirm"
        )
    path = manifest_for(directory, name, known)
    if path is None:
        raise NoManifest(
            f"{name} has no manifest, so there is no SHA-256 to check the copy against (an "
            "interrupted recording gets one when the agent restarts)"
        )
    with MANIFEST_LOCK:
        manifest = read_manifest(path)
        if manifest.sha256 != req.sha256:
            raise ChecksumMismatch(
                f"SHA-256 {req.sha256} is not {name}'s ({manifest.sha256}): the copy is damaged "
                "or is another file; copy it again. Nothing was changed"
            )
        if manifest.offloaded:
            return ConfirmResult(file_name=name, offloaded=True, already=True, manifest=manifest)
        updated = manifest.model_copy(
            update={
                "offloaded": True,
                "offloaded_at_ns": req.copied_at_ns if req.copied_at_ns is not None else now_ns,
                "offloaded_to": req.copied_to,
            }
        )
        rewrite_manifest(path, updated)  # temp, fsync, rename, fsync of the folder
    return ConfirmResult(file_name=name, offloaded=True, already=False, manifest=updated)
