"""The fleet timelapse API's bodies (no table: each answer is the nodes' own state)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.fleet.results import NodeCallResult
from app.fleet.wire import NodeId, TimelapseStatus


class TimelapseFleetStart(BaseModel):
    """``POST /api/v1/timelapse/start`` (the body may be left out)."""

    model_config = ConfigDict(extra="forbid")

    node_ids: list[NodeId] | None = Field(
        default=None, min_length=1, description="These nodes only; default: every joined node."
    )
    interval_s: float | None = Field(
        default=None,
        ge=0.05,
        le=86_400,
        description="Capture interval for this run on every node; default: each node's own.",
    )


class TimelapseFleetStop(BaseModel):
    """``POST /api/v1/timelapse/stop`` (the body may be left out)."""

    model_config = ConfigDict(extra="forbid")

    node_ids: list[NodeId] | None = Field(
        default=None, min_length=1, description="These nodes only; default: every joined node."
    )


class TimelapseNodeResult(NodeCallResult):
    """One node's answer: its timelapse status, or why there is none."""

    timelapse: TimelapseStatus | None = None


class TimelapseFleetResult(BaseModel):
    """A fleet-wide timelapse command: one result per node."""

    command: str = Field(description="'start' or 'stop'.")
    ok: int = Field(description="How many nodes carried it out.")
    failed: int
    nodes: list[TimelapseNodeResult]
