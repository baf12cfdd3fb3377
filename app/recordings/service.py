"""Recordings: manifests collected from nodes, listed with checksums and offload state."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.fleet.wire import Manifest
from app.recordings import repository
from app.recordings.models import ArchiveState, Recording, RecordingListPublic, RecordingPublic


def _columns(m: Manifest, text: str) -> dict[str, Any]:
    """The Recording columns a manifest fills."""
    return {
        "session_id": m.session_id,
        "cam_id": m.cam_id,
        "file_name": m.file_name,
        "sha256": m.sha256,
        "size_bytes": m.size_bytes,
        "first_frame_ns": m.first_frame_ns,
        "clock_offset_ns": m.clock_offset_ns,
        "clock_synchronized": m.clock_synchronized,
        "clock_error_bound_ns": m.clock_error_bound_ns,
        "clock_reference": m.clock_reference[:255] if m.clock_reference else None,
        "duration_s": m.duration_s,
        "frame_count": m.frame_count,
        "dropped_frames": m.dropped_frames,
        "offloaded": m.offloaded,
        "manifest_json": text,
    }


def ingest(db: Session, node_id: str, manifests: Sequence[Manifest]) -> set[str]:
    """Store manifests a node reported; the ones already stored as they are cost nothing
    (the poller reports every manifest of a node on each sweep).

    A stop's answer and a status sweep can bring the same new manifest at once, from two
    threads: the one that loses the insert race reads the winner's row and goes again.
    Returns the ids of the sessions whose recordings were added or changed.
    """
    for _ in range(2):
        try:
            return _ingest_once(db, node_id, manifests)
        except IntegrityError:
            db.rollback()
    return _ingest_once(db, node_id, manifests)


def _ingest_once(db: Session, node_id: str, manifests: Sequence[Manifest]) -> set[str]:
    known = {r.file_name: r for r in repository.by_node(db, node_id)}
    now = time.time_ns()
    rows = []
    for m in manifests:
        text = m.model_dump_json()
        row = known.get(m.file_name)
        if row is None:
            rows.append(Recording(node_id=node_id, collected_at_ns=now, **_columns(m, text)))
        elif row.manifest_json != text:
            for name, value in _columns(m, text).items():
                setattr(row, name, value)
            rows.append(row)
    if rows:
        repository.save(db, rows)
    return {r.session_id for r in rows}


def download_url(r: Recording) -> str | None:
    """Where the archived file is served, once there is one."""
    if r.archive_state in (ArchiveState.archived, ArchiveState.confirmed):
        return f"/api/v1/recordings/{r.id}/file"
    return None


def public(r: Recording) -> RecordingPublic:
    """A recording as the API shows it."""
    assert r.id is not None
    return RecordingPublic(
        id=r.id,
        node_id=r.node_id,
        session_id=r.session_id,
        file_name=r.file_name,
        sha256=r.sha256,
        size_bytes=r.size_bytes,
        offloaded=r.offloaded,
        archive_state=ArchiveState(r.archive_state),
        corrupt_copies=r.corrupt_copies,
        download_url=download_url(r),
        manifest=r.manifest(),
    )


def list_recordings(
    db: Session,
    session_id: str | None = None,
    node_id: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> RecordingListPublic:
    """Every recording the fleet knows (of a session, of a node; a page with limit)."""
    rows = repository.list_all(db, session_id, node_id, limit, offset)
    return RecordingListPublic(
        recordings=[public(r) for r in rows],
        total=repository.count(db, session_id, node_id),
        offset=offset,
    )
