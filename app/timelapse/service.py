"""Fleet timelapse: send start or stop to every target node at once, one result per node."""

from __future__ import annotations

from collections.abc import Sequence

from app.context import Fleet
from app.fleet.client import NodeCall
from app.fleet.results import call_fields
from app.fleet.wire import TimelapseStartRequest, TimelapseStatus
from app.nodes import service as node_service
from app.timelapse.models import (
    TimelapseFleetResult,
    TimelapseFleetStart,
    TimelapseFleetStop,
    TimelapseNodeResult,
)


def _result(command: str, calls: Sequence[NodeCall[TimelapseStatus]]) -> TimelapseFleetResult:
    nodes = [
        TimelapseNodeResult(
            **call_fields(c),
            timelapse=c.value,
        )
        for c in calls
    ]
    ok = sum(1 for n in nodes if n.ok)
    return TimelapseFleetResult(command=command, ok=ok, failed=len(nodes) - ok, nodes=nodes)


async def start(fleet: Fleet, body: TimelapseFleetStart) -> TimelapseFleetResult:
    """Start the timelapse on every target node; a node that refuses does not stop the others."""
    targets = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
    req = TimelapseStartRequest(interval_s=body.interval_s)
    calls = await fleet.fanout.each(
        targets, "timelapse_start", lambda a: fleet.client.timelapse_start(a, req)
    )
    return _result("start", calls)


async def stop(fleet: Fleet, body: TimelapseFleetStop) -> TimelapseFleetResult:
    """Stop the timelapse on every target node (a node that was not running answers ok)."""
    targets = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
    timeout = fleet.settings.stop_timeout_s
    calls = await fleet.fanout.each(
        targets,
        "timelapse_stop",
        lambda a: fleet.client.timelapse_stop(a, timeout_s=timeout),
        deadline_s=timeout,
    )
    return _result("stop", calls)
