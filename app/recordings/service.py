"""Recordings: manifests collected from nodes, listed with checksums and offload state."""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlmodel import Session

from app.recordings import repository
from app.recordings.models import Recording, RecordingListPublic, RecordingPublic
from node_agent.schemas import Manifest


def ingest(db: Session, node_id: str, manifests: Sequence[Manifest]) -> None:
    """Store (or refresh) manifests a node reported."""
    now = time.time_ns()
    rows = []
    for m in manifests:
        row = repository.find(db, node_id, m.file_name) or Recording(
            session_id=m.session_id,
            node_id=node_id,
            cam_id=m.cam_id,
            file_name=m.file_name,
            sha256=m.sha256,
            size_bytes=m.size_bytes,
            first_frame_ns=m.first_frame_ns,
            duration_s=m.duration_s,
            frame_count=m.frame_count,
            dropped_frames=m.dropped_frames,
            manifest_json="{}",
            collected_at_ns=now,
        )
        row.sha256 = m.sha256
        row.size_bytes = m.size_bytes
        row.first_frame_ns = m.first_frame_ns
        row.clock_offset_ns = m.clock_offset_ns
        row.clock_synchronized = m.clock_synchronized
        row.duration_s = m.duration_s
        row.frame_count = m.frame_count
        row.dropped_frames = m.dropped_frames
        row.offloaded = m.offloaded
        row.manifest_json = m.model_dump_json()
        rows.append(row)
    repository.save(db, rows)


def list_recordings(db: Session, session_id: str | None = None) -> RecordingListPublic:
    """Every recording the fleet knows."""
    return RecordingListPublic(
        recordings=[
            RecordingPublic(
                node_id=r.node_id,
                session_id=r.session_id,
                file_name=r.file_name,
                sha256=r.sha256,
                size_bytes=r.size_bytes,
                offloaded=r.offloaded,
                manifest=r.manifest(),
            )
            for r in repository.list_all(db, session_id)
        ]
    )
