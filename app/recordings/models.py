"""Recording table (one row per manifest collected) and its public form."""

from __future__ import annotations

from enum import StrEnum

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.fleet.wire import Manifest


class ArchiveState(StrEnum):
    """Where the coordinator's own copy of a recording stands."""

    none = "none"  # not in the archive (a transfer may be under way)
    archived = "archived"  # verified and durable in the archive, not yet confirmed to the node
    confirmed = "confirmed"  # ... and the node has marked it offloaded
    corrupt = "corrupt"  # the last copy did not match the manifest's SHA-256


class Recording(SQLModel, table=True):
    """A recording the fleet knows, from its manifest."""

    __table_args__ = (UniqueConstraint("node_id", "file_name", name="uq_recording_node_file"),)

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(max_length=64, index=True)
    node_id: str = Field(max_length=64, index=True)
    cam_id: str = Field(max_length=32)
    file_name: str = Field(max_length=255)
    sha256: str = Field(max_length=64)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    first_frame_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    clock_offset_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    clock_synchronized: bool = False
    clock_error_bound_ns: int | None = Field(
        default=None, sa_column=Column(BigInteger, nullable=True)
    )
    clock_reference: str | None = Field(default=None, max_length=255)
    duration_s: float
    frame_count: int
    dropped_frames: int
    offloaded: bool = False
    manifest_json: str = Field(sa_column=Column(Text, nullable=False))
    collected_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The coordinator's archive (app.offload): never taken from a node's manifest.
    archive_state: str = Field(
        default=ArchiveState.none.value,
        max_length=16,
        sa_column_kwargs={"server_default": ArchiveState.none.value},
    )
    archive_path: str | None = Field(
        default=None, max_length=512, description="Relative to archive_dir: SESSION/file."
    )
    archive_sha256: str | None = Field(default=None, max_length=64)
    archived_at_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    confirmed_at_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    corrupt_copies: int = Field(default=0, sa_column_kwargs={"server_default": sa.text("0")})

    def manifest(self) -> Manifest:
        """The stored manifest."""
        return Manifest.model_validate_json(self.manifest_json)


class RecordingPublic(BaseModel):
    """One recording in ``GET /api/v1/recordings``."""

    id: int
    node_id: str
    session_id: str
    file_name: str
    sha256: str
    size_bytes: int
    offloaded: bool = PField(description="The node's manifest says a verified copy exists.")
    archive_state: ArchiveState = PField(
        description="The coordinator's copy: none, archived (verified, not yet confirmed to "
        "the node), confirmed, or corrupt (the last copy did not match; both kept)."
    )
    corrupt_copies: int = PField(description="Copies that did not match, kept as .corrupt-N.")
    download_url: str | None = PField(
        description="GET this for the archived file (Range supported); null until archived."
    )
    manifest: Manifest


class RecordingListPublic(BaseModel):
    """``GET /api/v1/recordings``."""

    recordings: list[RecordingPublic]
    total: int | None = PField(default=None, description="How many match, in all.")
    offset: int = PField(default=0, description="How many newer ones were skipped.")
