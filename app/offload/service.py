"""Offload jobs: choose the recordings, start the job, and show its progress."""

from __future__ import annotations

import secrets
import time

from sqlmodel import Session

from app.errors import JobNotFound, NodeNotFound, RecordingNotFound, SessionNotFound
from app.nodes import repository as node_repository
from app.offload import repository
from app.offload.archive import UnsafeName, paths_for
from app.offload.engine import OffloadEngine
from app.offload.live import from_rows, public
from app.offload.models import (
    FileState,
    JobState,
    OffloadFile,
    OffloadJob,
    OffloadJobList,
    OffloadJobPublic,
    OffloadRequest,
)
from app.recordings.models import ArchiveState, Recording
from app.sessions import repository as session_repository


def new_job_id(now_ns: int) -> str:
    """``YYYYMMDD-HHMMSS-xxxxxx`` (UTC): sortable, and safe in a URL."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    return f"{stamp}-{secrets.token_hex(3)}"


def select(db: Session, req: OffloadRequest) -> list[Recording]:
    """The recordings ``req`` asks for; every given selector narrows.

    Without ``recordings``, a recording is taken when the archive does not have it
    confirmed yet, except one another copier confirmed (``offloaded``) that the archive
    never had, and a corrupt one (tried again only when listed by name). Listed ones are
    taken whatever their state (one already confirmed is answered ``skipped``).
    """
    if req.node_ids is not None:
        found = node_repository.get_many(db, req.node_ids)
        unknown = [n for n in req.node_ids if n not in found]
        if unknown:
            raise NodeNotFound(f"unknown node ids: {', '.join(unknown)}; GET /api/v1/nodes")
    rows = list(repository.candidates(db, req.session_id, req.node_ids))
    if (
        req.session_id is not None
        and not rows
        and session_repository.get(db, req.session_id) is None
    ):
        raise SessionNotFound(f"no session {req.session_id}; GET /api/v1/sessions")
    if req.recordings is None:
        return [r for r in rows if _wanted(r)]
    missing = [
        f"{ref.node_id}/{ref.file_name}"
        for ref in req.recordings
        if repository.by_node_file(db, ref.node_id, ref.file_name) is None
    ]
    if missing:
        raise RecordingNotFound(
            f"no recording {', '.join(missing[:10])}; GET /api/v1/recordings lists them"
        )
    wanted = {(ref.node_id, ref.file_name) for ref in req.recordings}
    return [r for r in rows if (r.node_id, r.file_name) in wanted]


def _wanted(r: Recording) -> bool:
    if r.archive_state == ArchiveState.archived:
        return True  # verified here, not yet confirmed to the node
    return r.archive_state == ArchiveState.none and not r.offloaded


async def start(engine: OffloadEngine, req: OffloadRequest) -> OffloadJobPublic:
    """Make a job for the recordings ``req`` selects and run it in the background."""
    root = engine.root

    def tx(db: Session) -> tuple[OffloadJob, list[OffloadFile]]:
        rows = select(db, req)
        now = time.time_ns()
        job = OffloadJob(
            job_id=new_job_id(now),
            state=JobState.running.value,
            request_json=req.model_dump_json(exclude_none=True),
            bytes_total=sum(r.size_bytes for r in rows),
            created_at_ns=now,
        )
        files = []
        for r in rows:
            assert r.id is not None
            state, error = FileState.queued, None
            try:
                paths_for(root, r.manifest())
            except UnsafeName as err:
                state, error = FileState.failed, f"not archived: {err}"
            files.append(
                OffloadFile(
                    job_id=job.job_id,
                    recording_id=r.id,
                    node_id=r.node_id,
                    session_id=r.session_id,
                    file_name=r.file_name,
                    size_bytes=r.size_bytes,
                    state=state.value,
                    error=error,
                    updated_at_ns=now,
                )
            )
        return job, repository.create_job(db, job, files)

    row, files = await engine.fleet.store.run(tx)
    job = from_rows(row, files)
    engine.launch(job)
    return public(job)


async def get(engine: OffloadEngine, job_id: str) -> OffloadJobPublic:
    """One job: from memory while it runs, else from the database."""
    job = engine.live.get(job_id)
    if job is not None:
        return public(job)
    found = await engine.fleet.store.run(lambda db: repository.job(db, job_id))
    if found is None:
        raise JobNotFound(f"no offload job {job_id}; GET /api/v1/offload lists recent ones")
    return public(from_rows(*found))


async def recent(engine: OffloadEngine, limit: int) -> OffloadJobList:
    """The newest jobs first, with their counts (their files are in each job's answer)."""
    found = await engine.fleet.store.run(lambda db: repository.recent_jobs(db, limit))
    jobs = []
    for row, files in found:
        live = engine.live.get(row.job_id) or from_rows(row, files)
        jobs.append(public(live).model_copy(update={"files": []}))
    return OffloadJobList(jobs=jobs)
