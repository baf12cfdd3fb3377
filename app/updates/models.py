"""The fleet update's bodies. No table: each node keeps its own update history; the
coordinator keeps the last fleet run in memory (``GET /api/v1/fleet/update``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.fleet.wire import NodeId

# A release's version as tags name it (1.4.0, 1.4.0rc1, v1.4.0+pi): what the agent's
# feed and folders accept.
Version = Annotated[str, StringConstraints(pattern=r"^v?[0-9][0-9A-Za-z.+-]{0,63}$")]


class FleetUpdateRequest(BaseModel):
    """``POST /api/v1/fleet/update``."""

    model_config = ConfigDict(extra="forbid")

    version: Version | None = Field(
        default=None,
        description="The release to install; default: the newest the first node's feed "
        "offers, then that same version on every node.",
    )
    node_ids: list[NodeId] | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="These nodes only, in this order; default: every approved node by cam_id.",
    )


class NodeOutcome(StrEnum):
    """What happened on one node."""

    waiting = "waiting"  # its turn has not come
    updating = "updating"
    updated = "updated"  # it runs the target version and passed its health check
    up_to_date = "up_to_date"
    skipped = "skipped"  # recording: never updated while it records
    failed = "failed"  # the run stops here
    not_started = "not_started"  # after a failure: left as it was


class NodeUpdateResult(BaseModel):
    """One node's part of the run."""

    node_id: str
    outcome: NodeOutcome = NodeOutcome.waiting
    from_version: str | None = None
    version: str | None = Field(default=None, description="What it runs now, as it says.")
    detail: str | None = Field(default=None, description="Why, in the node's own words.")
    started_at: str | None = None
    finished_at: str | None = None


class FleetUpdateRun(BaseModel):
    """The fleet update under way, or the last one."""

    id: str
    state: Literal["running", "done", "failed"]
    target: str | None = Field(description="The version every node is brought to.")
    started_at: str
    finished_at: str | None = None
    stopped_at: str | None = Field(default=None, description="The node whose failure stopped it.")
    nodes: list[NodeUpdateResult]
