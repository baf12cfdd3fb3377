"""Fleet timelapse: send start or stop to every target node at once, one result per node."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from app.context import Fleet
from app.fleet.client import NodeCall
from app.fleet.wire import TimelapseStartRequest, TimelapseStatus
from app.nodes import service as node_service
from app.timelapse.models import (
    TimelapseFleetResult,
    TimelapseFleetStart,
    TimelapseFleetStop,
    TimelapseNodeResult,
)


def _result(
    fleet: Fleet, command: str, calls: Sequence[NodeCall[TimelapseStatus]]
) -> TimelapseFleetResult:
    for call in calls:
        if call.status_code is not None:
            fleet.state.contact(call.node_id)
        else:
            fleet.state.failure(call.node_id, call.error or "unreachable")
    fleet.poller.refresh_soon([c.node_id for c in calls if c.ok])
    nodes = [
        TimelapseNodeResult(
            node_id=c.node_id,
            ok=c.ok,
            status_code=c.status_code,
            error=c.error,
            latency_ms=c.latency_ms,
            timelapse=c.value,
        )
        for c in calls
    ]
    ok = sum(1 for n in nodes if n.ok)
    return TimelapseFleetResult(command=command, ok=ok, failed=len(nodes) - ok, nodes=nodes)


async def start(db: Session, fleet: Fleet, body: TimelapseFleetStart) -> TimelapseFleetResult:
    """Start the timelapse on every target node; a node that refuses does not stop the others."""
    targets = node_service.addresses(db, fleet, body.node_ids)
    req = TimelapseStartRequest(interval_s=body.interval_s)
    calls = await fleet.client.fan_out(targets, lambda a: fleet.client.timelapse_start(a, req))
    return _result(fleet, "start", calls)


async def stop(db: Session, fleet: Fleet, body: TimelapseFleetStop) -> TimelapseFleetResult:
    """Stop the timelapse on every target node (a node that was not running answers ok)."""
    targets = node_service.addresses(db, fleet, body.node_ids)
    timeout = fleet.settings.stop_timeout_s
    calls = await fleet.client.fan_out(
        targets, lambda a: fleet.client.timelapse_stop(a, timeout_s=timeout)
    )
    return _result(fleet, "stop", calls)
