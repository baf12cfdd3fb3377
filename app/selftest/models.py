"""Bodies of the fleet-wide self-test."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.fleet.wire import NodeId, SelfTestResult
from app.sessions.models import NodeCallPublic


class FleetSelfTestRequest(BaseModel):
    """``POST /api/v1/selftest``."""

    model_config = ConfigDict(extra="forbid")

    duration_s: float = Field(default=10.0, ge=1.0, le=120.0)
    node_ids: list[NodeId] | None = Field(default=None, min_length=1)


class SelfTestNode(NodeCallPublic):
    """One node's self-test."""

    result: SelfTestResult | None = None


class FleetSelfTest(BaseModel):
    """Every node's self-test; ``passed`` only when all passed."""

    passed: bool
    nodes: list[SelfTestNode]
