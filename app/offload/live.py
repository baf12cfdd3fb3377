"""Jobs in memory while they run, and the one shape the API shows them in (a job loaded
from the database is shown through the same)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.offload.models import (
    FileState,
    JobState,
    OffloadFile,
    OffloadFilePublic,
    OffloadJob,
    OffloadJobPublic,
)
from app.offload.transfer import Progress
from app.timeutil import iso


@dataclass
class LiveFile:
    """One file of a running job, as the job's answer shows it."""

    id: int
    recording_id: int
    node_id: str
    session_id: str
    file_name: str
    size_bytes: int
    state: FileState = FileState.queued
    progress: Progress = field(default_factory=Progress)
    settled: bool = False  # confirmed to the node, by this job or before it


@dataclass
class LiveJob:
    """A job in memory while it runs (and how one loaded from the database is shown)."""

    job_id: str
    created_at_ns: int
    bytes_total: int
    files: list[LiveFile]
    state: JobState = JobState.running
    finished_at_ns: int | None = None
    # Nodes this job gave up on (every attempt of a file failed): their other files fail
    # at once instead of each waiting out its own retries.
    gone: dict[str, str] = field(default_factory=dict)


def from_rows(row: OffloadJob, files: Sequence[OffloadFile]) -> LiveJob:
    """A job as stored, in the shape of a running one."""
    return LiveJob(
        job_id=row.job_id,
        created_at_ns=row.created_at_ns,
        bytes_total=row.bytes_total,
        state=JobState(row.state),
        finished_at_ns=row.finished_at_ns,
        files=[
            LiveFile(
                id=f.id or 0,
                recording_id=f.recording_id,
                node_id=f.node_id,
                session_id=f.session_id,
                file_name=f.file_name,
                size_bytes=f.size_bytes,
                state=FileState(f.state),
                progress=Progress(
                    bytes_done=f.bytes_done,
                    bytes_received=f.bytes_received,
                    resume_offsets=[int(o) for o in f.resume_offsets.split(",") if o],
                    attempts=f.attempts,
                    error=f.error,
                ),
                settled=f.state == FileState.confirmed,
            )
            for f in files
        ],
    )


def public(job: LiveJob) -> OffloadJobPublic:
    """A job as the API shows it."""
    files = [
        OffloadFilePublic(
            recording_id=f.recording_id,
            node_id=f.node_id,
            session_id=f.session_id,
            file_name=f.file_name,
            size_bytes=f.size_bytes,
            state=f.state,
            bytes_done=f.progress.bytes_done,
            bytes_received=f.progress.bytes_received,
            resume_offsets=list(f.progress.resume_offsets),
            attempts=f.progress.attempts,
            error=f.progress.error,
            download_url=(
                f"/api/v1/recordings/{f.recording_id}/file"
                if f.state in (FileState.archived, FileState.confirmed)
                else None
            ),
        )
        for f in job.files
    ]
    return OffloadJobPublic(
        job_id=job.job_id,
        state=job.state,
        created_at=iso(job.created_at_ns),
        finished_at=iso(job.finished_at_ns) if job.finished_at_ns is not None else None,
        bytes_total=job.bytes_total,
        bytes_done=sum(f.bytes_done for f in files),
        counts=dict(Counter(f.state.value for f in files)),
        files=files,
    )
