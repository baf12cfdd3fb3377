"""The fleet-wide mode switch's bodies (no table: each program keeps its own mode file)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.fleet.results import NodeCallResult
from app.fleet.wire import NodeId
from common.logmodes import Mode, ModeState


class FleetModeChange(BaseModel):
    """``PUT /api/v1/fleet/mode``: the coordinator and every node (or node_ids) at once."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode
    node_ids: list[NodeId] | None = Field(
        default=None, min_length=1, description="These nodes only; default: every joined node."
    )
    coordinator: bool = Field(default=True, description="Switch the coordinator too.")


class ModeNodeResult(NodeCallResult):
    """One node's answer to the switch."""

    mode: Mode | None = Field(default=None, description="The node's mode now.")


class FleetModeResult(BaseModel):
    """The switch across the fleet: the coordinator's state and one result per node."""

    mode: Mode
    coordinator: ModeState | None = Field(description="None when it was left alone.")
    ok: int = Field(description="How many nodes switched.")
    failed: int = Field(description="Nodes that refused or did not answer.")
    nodes: list[ModeNodeResult]
