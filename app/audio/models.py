"""The fleet audio API's bodies (no table: the setting lives on each node)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from app.fleet.results import NodeCallResult
from app.fleet.wire import NodeId


class AudioFleetToggle(BaseModel):
    """``PUT /api/v1/audio``: record an audio track on every node (or on node_ids)."""

    model_config = ConfigDict(extra="forbid")

    enabled: StrictBool = Field(description="camera.audio on the nodes.")
    node_ids: list[NodeId] | None = Field(
        default=None, min_length=1, description="These nodes only; default: every joined node."
    )


class AudioNodeResult(NodeCallResult):
    """One node's answer to the toggle."""

    enabled: bool | None = Field(default=None, description="camera.audio on the node now.")


class AudioFleetResult(BaseModel):
    """The toggle across the fleet: one result per node."""

    enabled: bool
    ok: int = Field(description="How many nodes took the setting.")
    failed: int = Field(description="Nodes that refused (409 while recording) or did not answer.")
    nodes: list[AudioNodeResult]
