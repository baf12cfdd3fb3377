"""Session and command-result tables, and the session API's bodies."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StringConstraints
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from app.fleet.wire import NodeId


class SessionState(StrEnum):
    """A session's life cycle; the last three are final."""

    starting = "starting"
    recording = "recording"
    stopping = "stopping"
    stopped = "stopped"
    failed = "failed"  # no node took the start
    aborted = "aborted"  # all_or_nothing and a node failed


FINAL_STATES = frozenset({SessionState.stopped, SessionState.failed, SessionState.aborted})


class Command(StrEnum):
    """What the coordinator asked of a node in a session."""

    start = "start"
    stop = "stop"
    abort = "abort"
    beep = "beep"  # the start tone, sent once every node has armed


class RecordingSession(SQLModel, table=True):
    """One synchronized recording across the fleet."""

    __tablename__ = "recording_session"

    session_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(default="", max_length=200)
    state: str = Field(default="starting", max_length=16, index=True)
    mode: str = Field(default="best_effort", max_length=16)
    lead_ms: int
    start_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    stopped_at_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    skew_ms: float | None = None
    skew_bound_ms: float | None = None
    end_reason: str | None = Field(default=None, max_length=200)
    # The operator's own notes about the session (venue, teams, ...), a JSON object of
    # strings; "metadata" itself is taken by SQLAlchemy's declarative base.
    metadata_json: str = Field(
        default="{}", sa_column=Column(Text, nullable=False, server_default="{}")
    )
    edited_at_ns: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))


class CommandResult(SQLModel, table=True):
    """What one node answered to one command (or why it did not)."""

    __tablename__ = "command_result"

    id: int | None = Field(default=None, primary_key=True)
    session_id: str = Field(foreign_key="recording_session.session_id", index=True, max_length=64)
    node_id: str = Field(max_length=64, index=True)
    command: str = Field(max_length=16)
    command_id: str = Field(max_length=128)
    ok: bool
    status_code: int | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    latency_ms: float
    created_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))


MAX_NAME_CHARS = 200
MAX_METADATA_KEYS = 20
MAX_METADATA_VALUE_CHARS = 500
METADATA_KEY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$"
# No control characters (a name or note ends up in tables, file listings and terminals).
_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"

SessionName = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=MAX_NAME_CHARS, pattern=_PRINTABLE)
]
MetadataKey = Annotated[str, StringConstraints(pattern=METADATA_KEY_PATTERN)]
MetadataValue = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=MAX_METADATA_VALUE_CHARS, pattern=_PRINTABLE
    ),
]
_METADATA_HELP = (
    f"Up to {MAX_METADATA_KEYS} notes, e.g. {{'venue': 'North pitch', 'home': 'Reds'}}: keys "
    f"of 1-40 letters, digits, space, '_', '.' or '-'; values up to "
    f"{MAX_METADATA_VALUE_CHARS} characters."
)


class SessionCreate(BaseModel):
    """``POST /api/v1/sessions``."""

    model_config = ConfigDict(extra="forbid")

    name: SessionName | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = PField(
        default=None, max_length=MAX_METADATA_KEYS, description=_METADATA_HELP
    )
    lead_ms: StrictInt | None = PField(
        default=None,
        # The bounds are the coordinator's settings: app.main puts them in the schema, and
        # sessions.service.check_lead_ms refuses values outside them with a 422.
        description="How far ahead to schedule the start; bounded by the coordinator's "
        "min_lead_ms and max_lead_ms (defaults 100 and 60000).",
    )
    node_ids: list[NodeId] | None = PField(
        default=None,
        min_length=1,
        description="Record on these nodes only; default: every joined node.",
    )
    mode: Literal["best_effort", "all_or_nothing"] = PField(
        default="best_effort",
        description="best_effort: nodes that fail are reported and the others record. "
        "all_or_nothing: if any node refuses or fails, the start is cancelled everywhere.",
    )
    planned_duration_s: StrictFloat | StrictInt | None = PField(
        default=None,
        gt=0,
        le=24 * 3600,
        description="How long the recording is meant to last; each node's storage gate checks "
        "that it fits.",
    )
    beep: bool | None = PField(
        default=None,
        description="Play the start tone on the coordinator's beep_cams once every node has "
        "armed; default: the coordinator's beep setting.",
    )


class SessionUpdate(BaseModel):
    """``PATCH /api/v1/sessions/{session_id}``: what is left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    name: SessionName = PField(default="", description="The new name ('' for none).")
    metadata: dict[MetadataKey, MetadataValue | None] | None = PField(
        default=None,
        max_length=MAX_METADATA_KEYS,
        description="Merged into the session's notes key by key; a key sent as null is "
        "removed. " + _METADATA_HELP,
    )


class NodeCallPublic(BaseModel):
    """One node's answer to a fleet-wide command."""

    node_id: str
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: float


class LockViewNode(NodeCallPublic):
    """One node's Lock View still."""

    file_name: str | None = None
    size_bytes: int | None = None


class LockViewFleet(BaseModel):
    """``POST /api/v1/sessions/{session_id}/lockview``."""

    session_id: str
    nodes: list[LockViewNode]


class CommandPublic(BaseModel):
    """One node's answer to one command."""

    command_id: str
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: float
    at: datetime | None


class NodeResult(BaseModel):
    """Everything a session knows about one node."""

    node_id: str
    cam_id: str | None
    start: CommandPublic | None
    stop: CommandPublic | None
    abort: CommandPublic | None = None
    beep: CommandPublic | None = PField(
        default=None, description="The start tone, on the beep cameras once every node armed."
    )
    file_name: str | None = None
    sha256: str | None = None
    first_frame_ns: int | None = None
    clock_offset_ns: int | None = None
    clock_synchronized: bool | None = None
    clock_error_bound_ns: int | None = PField(
        default=None, description="The node's clock error bound when its recording began."
    )
    clock_reference: str | None = PField(default=None, description="The reference it followed.")
    start_late_ns: int | None = PField(
        default=None, description="How late past its start instant the node began."
    )
    corrected_first_frame_ns: int | None = PField(
        default=None, description="first_frame_ns minus the node's clock offset."
    )
    frame_count: int | None = None
    dropped_frames: int | None = None
    recording_id: int | None = PField(
        default=None, description="GET /api/v1/recordings/{id}/file once it is archived."
    )
    size_bytes: int | None = None
    archive_state: str | None = PField(
        default=None,
        description="The coordinator's copy: none, archived, confirmed or corrupt "
        "(null: no recording from this node).",
    )


class SessionPublic(BaseModel):
    """A session as the API shows it."""

    session_id: str
    name: str
    metadata: dict[str, str] = PField(
        default_factory=dict, description="The operator's notes about the session."
    )
    edited_at: datetime | None = PField(
        default=None, description="When the name or notes were last changed (PATCH)."
    )
    state: SessionState = PField(
        description="starting, recording, stopping, stopped, failed (no node started) or "
        "aborted (all_or_nothing and a node failed)."
    )
    end_reason: str | None = PField(
        default=None,
        description="Why the session ended when no stop command ended it: 'coordinator "
        "restarted', 'agents stopped', 'nodes unreachable'.",
    )
    mode: str
    lead_ms: int
    start_at: datetime
    start_at_ns: int
    created_at: datetime
    stopped_at: datetime | None
    skew_ms: float | None = PField(
        description="Spread of the nodes' first-frame times, corrected by each clock offset."
    )
    skew_bound_ms: float | None = PField(
        default=None,
        description="The worst pairwise error the clocks allow after that correction: the "
        "sum of the two largest bounds (each without |offset|, which is corrected); null when "
        "a recording has no bound.",
    )
    frame_period_ms: float | None = PField(
        default=None, description="One frame period at the recordings' highest frame rate."
    )
    skew_warnings: list[str] = PField(
        default_factory=list,
        description="Skew or bound over one frame period, or a bound that is not known.",
    )
    nodes: list[NodeResult]


class SessionList(BaseModel):
    """``GET /api/v1/sessions``."""

    sessions: list[SessionPublic]
    total: int | None = PField(default=None, description="Sessions stored in all.")
    offset: int = PField(default=0, description="How many newer sessions were skipped.")
