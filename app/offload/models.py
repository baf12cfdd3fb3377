"""Offload job and file tables, their states, and the offload API's bodies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from app.fleet.wire import DeleteResult, NodeId, SessionId

JOB_ID_PATTERN = r"^[a-z0-9-]{1,40}$"


class JobState(StrEnum):
    """An offload job's life cycle; the last three are final."""

    running = "running"
    done = "done"  # every file is confirmed (or was skipped because it already was)
    failed = "failed"  # some file failed, is corrupt, was skipped or waits for its confirm
    interrupted = "interrupted"  # the coordinator stopped while it ran; offload again


FINAL_JOB_STATES = frozenset({JobState.done, JobState.failed, JobState.interrupted})


class FileState(StrEnum):
    """One file's progress in a job; the last five are final."""

    queued = "queued"
    transferring = "transferring"
    archived = "archived"  # verified and durable here; the confirm to the node did not go through
    confirmed = "confirmed"  # verified, durable, and the node marked it offloaded
    skipped = "skipped"  # nothing to do (already confirmed) or not now (the node records)
    failed = "failed"
    corrupt = "corrupt"  # the copy did not match the manifest's SHA-256; both copies kept


FINAL_FILE_STATES = frozenset(
    {
        FileState.archived,
        FileState.confirmed,
        FileState.skipped,
        FileState.failed,
        FileState.corrupt,
    }
)


class OffloadJob(SQLModel, table=True):
    """One ``POST /api/v1/offload``."""

    __tablename__ = "offload_job"

    job_id: str = Field(primary_key=True, max_length=40)
    state: str = Field(default=JobState.running.value, max_length=16, index=True)
    request_json: str = Field(sa_column=Column(Text, nullable=False))
    bytes_total: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    finished_at_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class OffloadFile(SQLModel, table=True):
    """One recording in one job, as far as it got."""

    __tablename__ = "offload_file"

    id: int | None = Field(default=None, primary_key=True)
    job_id: str = Field(foreign_key="offload_job.job_id", index=True, max_length=40)
    recording_id: int = Field(foreign_key="recording.id", index=True)
    node_id: str = Field(max_length=64)
    session_id: str = Field(max_length=64)
    file_name: str = Field(max_length=255)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    state: str = Field(default=FileState.queued.value, max_length=16)
    bytes_done: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    bytes_received: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    resume_offsets: str = Field(default="", max_length=2000)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))


class RecordingRef(BaseModel):
    """One recording by its node and file name."""

    model_config = ConfigDict(extra="forbid")

    node_id: NodeId
    file_name: str = PField(min_length=1, max_length=255)


class OffloadRequest(BaseModel):
    """``POST /api/v1/offload``: every given selector narrows the selection."""

    model_config = ConfigDict(extra="forbid")

    node_ids: list[NodeId] | None = PField(
        default=None, min_length=1, max_length=1000, description="Only these nodes' files."
    )
    session_id: SessionId | None = PField(default=None, description="Only this session.")
    recordings: list[RecordingRef] | None = PField(
        default=None,
        min_length=1,
        max_length=500,  # the request body's cap is 64 KiB
        description="Only these files (a corrupt one is tried again only when listed here).",
    )


class OffloadFilePublic(BaseModel):
    """One file of a job."""

    recording_id: int
    node_id: str
    session_id: str
    file_name: str
    size_bytes: int
    state: FileState
    bytes_done: int = PField(description="Bytes verified-to-be or in the archive's .part.")
    bytes_received: int = PField(description="Bytes this job took from the node.")
    resume_offsets: list[int] = PField(
        description="Every byte offset a transfer resumed from (an interrupted .part)."
    )
    attempts: int
    error: str | None
    download_url: str | None


class OffloadJobPublic(BaseModel):
    """An offload job with its files' progress."""

    job_id: str
    state: JobState
    created_at: datetime
    finished_at: datetime | None
    bytes_total: int
    bytes_done: int
    counts: dict[str, int] = PField(description="Files per state.")
    files: list[OffloadFilePublic]


class OffloadJobList(BaseModel):
    """``GET /api/v1/offload``: recent jobs, newest first (without their files)."""

    jobs: list[OffloadJobPublic]


class DeleteNode(BaseModel):
    """One node's answer to a delete of its offloaded recordings."""

    node_id: str
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: float
    result: DeleteResult | None


class DeleteFleet(BaseModel):
    """``DELETE /api/v1/recordings?offloaded=true``: what each node freed."""

    nodes: list[DeleteNode]
    freed_bytes: int
    deleted: int = PField(description="Files removed over all nodes.")
