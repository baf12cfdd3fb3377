"""Offload queries: jobs, their files, and each recording's archive state.

The archive's own commits (a file archived, corrupt, confirmed) are made durable on
SQLite too: its WAL runs with ``synchronous=NORMAL``, which survives a crash of the
process but not of the machine, so these transactions commit with ``FULL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from app.offload.models import FileState, JobState, OffloadFile, OffloadJob
from app.recordings.models import ArchiveState, Recording


def recording(db: Session, recording_id: int) -> Recording | None:
    """One recording by id."""
    return db.get(Recording, recording_id)


def path_owner(db: Session, relative: str, recording_id: int) -> Recording | None:
    """Another recording already archived at ``relative``, if any."""
    stmt = select(Recording).where(
        Recording.archive_path == relative, col(Recording.id) != recording_id
    )
    return db.exec(stmt).first()


def candidates(
    db: Session, session_id: str | None, node_ids: Sequence[str] | None
) -> Sequence[Recording]:
    """Recordings of one session and/or some nodes (all when both are None), oldest first."""
    stmt = select(Recording).order_by(col(Recording.first_frame_ns), col(Recording.id))
    if session_id is not None:
        stmt = stmt.where(Recording.session_id == session_id)
    if node_ids is not None:
        stmt = stmt.where(col(Recording.node_id).in_(node_ids))
    return db.exec(stmt).all()


def by_session(db: Session, session_id: str) -> Sequence[Recording]:
    """A session's recordings, by node and file."""
    stmt = (
        select(Recording)
        .where(Recording.session_id == session_id)
        .order_by(col(Recording.node_id), col(Recording.file_name))
    )
    return db.exec(stmt).all()


def by_node_file(db: Session, node_id: str, file_name: str) -> Recording | None:
    """One node's recording by its file name."""
    stmt = select(Recording).where(Recording.node_id == node_id, Recording.file_name == file_name)
    return db.exec(stmt).first()


def create_job(db: Session, job: OffloadJob, files: list[OffloadFile]) -> list[OffloadFile]:
    """Insert a job and its files; the files come back with their ids."""
    db.add(job)
    db.flush()  # the job row first: the files refer to it
    db.add_all(files)
    db.commit()
    return files


def update_file(db: Session, file_id: int, **values: Any) -> None:
    """Save one file's progress."""
    row = db.get(OffloadFile, file_id)
    if row is not None:
        for name, value in values.items():
            setattr(row, name, value)
        db.add(row)
        db.commit()


def finish_job(db: Session, job_id: str, state: JobState, at_ns: int) -> None:
    """A job ended (or was interrupted)."""
    row = db.get(OffloadJob, job_id)
    if row is not None:
        row.state = state.value
        row.finished_at_ns = at_ns
        db.add(row)
        db.commit()


def interrupt_unfinished(db: Session, at_ns: int) -> int:
    """At start: jobs a previous run left running are interrupted, their unfinished files
    failed with why. Returns how many jobs."""
    jobs = db.exec(select(OffloadJob).where(OffloadJob.state == JobState.running.value)).all()
    if not jobs:
        return 0
    ids = [j.job_id for j in jobs]
    open_states = (FileState.queued.value, FileState.transferring.value)
    files = db.exec(
        select(OffloadFile).where(
            col(OffloadFile.job_id).in_(ids), col(OffloadFile.state).in_(open_states)
        )
    ).all()
    for f in files:
        f.state = FileState.failed.value
        f.error = "interrupted: the coordinator stopped; the next offload resumes it"
        f.updated_at_ns = at_ns
        db.add(f)
    for j in jobs:
        j.state = JobState.interrupted.value
        j.finished_at_ns = at_ns
        db.add(j)
    db.commit()
    return len(jobs)


def job(db: Session, job_id: str) -> tuple[OffloadJob, Sequence[OffloadFile]] | None:
    """One job and its files."""
    row = db.get(OffloadJob, job_id)
    if row is None:
        return None
    files = db.exec(
        select(OffloadFile).where(OffloadFile.job_id == job_id).order_by(col(OffloadFile.id))
    ).all()
    return row, files


def recent_jobs(db: Session, limit: int) -> list[tuple[OffloadJob, Sequence[OffloadFile]]]:
    """The newest jobs first, each with its files."""
    jobs = db.exec(
        select(OffloadJob).order_by(col(OffloadJob.created_at_ns).desc()).limit(limit)
    ).all()
    if not jobs:
        return []
    files = db.exec(
        select(OffloadFile)
        .where(col(OffloadFile.job_id).in_([j.job_id for j in jobs]))
        .order_by(col(OffloadFile.id))
    ).all()
    return [(j, [f for f in files if f.job_id == j.job_id]) for j in jobs]


def _set_archive(db: Session, recording_id: int, **values: Any) -> None:
    """Update a recording's archive columns in a transaction of its own that commits durably
    (one connection from PRAGMA to COMMIT, so the setting applies to this commit)."""
    bind = db.get_bind()
    assert isinstance(bind, Engine)  # the store's sessions are bound to the engine
    sqlite = bind.dialect.name == "sqlite"
    with bind.connect() as conn:
        if sqlite:
            conn.exec_driver_sql("PRAGMA synchronous=FULL")
        conn.execute(update(Recording).where(col(Recording.id) == recording_id).values(**values))
        conn.commit()
        if sqlite:
            conn.exec_driver_sql("PRAGMA synchronous=NORMAL")


def mark_archived(db: Session, recording_id: int, relative: str, sha256: str, at_ns: int) -> None:
    """The verified copy is in the archive (renamed and fsynced): commit it durably."""
    _set_archive(
        db,
        recording_id,
        archive_state=ArchiveState.archived.value,
        archive_path=relative,
        archive_sha256=sha256,
        archived_at_ns=at_ns,
    )


def mark_corrupt(db: Session, recording_id: int) -> None:
    """The last copy did not match the manifest (it is kept as .corrupt-N)."""
    row = db.get(Recording, recording_id)
    if row is not None:
        # A verified copy archived before stays what it was; only a missing one is corrupt.
        state = row.archive_state
        if state not in (ArchiveState.archived.value, ArchiveState.confirmed.value):
            state = ArchiveState.corrupt.value
        _set_archive(db, recording_id, archive_state=state, corrupt_copies=row.corrupt_copies + 1)


def mark_confirmed(db: Session, recording_id: int, at_ns: int, manifest_json: str | None) -> None:
    """The node marked the recording offloaded; keep its rewritten manifest."""
    values: dict[str, Any] = {
        "archive_state": ArchiveState.confirmed.value,
        "confirmed_at_ns": at_ns,
        "offloaded": True,
    }
    if manifest_json is not None:
        values["manifest_json"] = manifest_json
    _set_archive(db, recording_id, **values)


def archived_in_session(db: Session, session_id: str) -> Sequence[Recording]:
    """A session's recordings that have a verified copy in the archive."""
    states = (ArchiveState.archived.value, ArchiveState.confirmed.value)
    stmt = (
        select(Recording)
        .where(Recording.session_id == session_id, col(Recording.archive_state).in_(states))
        .order_by(col(Recording.node_id), col(Recording.file_name))
    )
    return db.exec(stmt).all()
