"""One node's part of a fleet-wide command, the same in every domain's answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.fleet.client import NodeCall


class NodeCallResult(BaseModel):
    """Whether the node carried the command out, and if not, why."""

    node_id: str
    ok: bool
    status_code: int | None = Field(description="None when the node did not answer at all.")
    error: str | None
    latency_ms: float


def call_fields(call: NodeCall[Any]) -> dict[str, Any]:
    """The ``NodeCallResult`` fields of ``call``; a domain's result adds its own."""
    return {
        "node_id": call.node_id,
        "ok": call.ok,
        "status_code": call.status_code,
        "error": call.error,
        "latency_ms": call.latency_ms,
    }
