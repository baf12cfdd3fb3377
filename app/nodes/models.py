"""Node table and its public form."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel

from app.fleet.wire import NodeStatus, Position


class Node(SQLModel, table=True):
    """A node that joined; its identity survives restarts of either side."""

    node_id: str = Field(primary_key=True, max_length=64)
    cam_id: str = Field(max_length=32, index=True)
    position: str = Field(default=Position.other.value, max_length=16)
    host: str = Field(max_length=255, description="The address the join came from.")
    port: int
    api_token: str = Field(max_length=255, description="Secret: never shown.")
    public_key: str | None = Field(
        default=None, max_length=64, description="The node's Ed25519 key; it signs every join."
    )
    approved: bool = Field(
        default=True,
        sa_column_kwargs={"server_default": sa.true()},
        description="False while the node waits for the operator (approve_new_nodes).",
    )
    version: str = Field(default="", max_length=64)
    hostname: str = Field(default="", max_length=255)
    joined_at_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    last_seen_ns: int = Field(sa_column=Column(BigInteger, nullable=False))


class NodePublic(BaseModel):
    """A node as the API shows it: registry entry, liveness and cached status."""

    node_id: str
    cam_id: str
    position: str
    address: str
    version: str
    hostname: str
    approved: bool
    online: bool = PField(description="The node answered a call recently (not just a heartbeat).")
    last_heartbeat: datetime | None
    joined_at: datetime | None
    last_contact: datetime | None
    last_error: str | None
    rtt_ms: float | None
    status: NodeStatus | None
    clock_flags: list[str] = PField(
        default_factory=list,
        description="Clock problems: not following the master, a bound over one frame period.",
    )


class NodeList(BaseModel):
    """``GET /api/v1/nodes``."""

    nodes: list[NodePublic]
    online: int
    total: int
    pending: int = PField(description="Nodes waiting for the operator's approval.")
