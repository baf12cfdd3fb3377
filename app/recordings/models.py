"""Recording table (one row per manifest collected) and its public form."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import BigInteger, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.fleet.wire import Manifest


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
    duration_s: float
    frame_count: int
    dropped_frames: int
    offloaded: bool = False
    manifest_json: str = Field(sa_column=Column(Text, nullable=False))
    collected_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))

    def manifest(self) -> Manifest:
        """The stored manifest."""
        return Manifest.model_validate_json(self.manifest_json)


class RecordingPublic(BaseModel):
    """One recording in ``GET /api/v1/recordings``."""

    node_id: str
    session_id: str
    file_name: str
    sha256: str
    size_bytes: int
    offloaded: bool
    manifest: Manifest


class RecordingListPublic(BaseModel):
    """``GET /api/v1/recordings``."""

    recordings: list[RecordingPublic]
