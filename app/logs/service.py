"""Set a node's mode and read its logs: one call to the node, its refusal passed on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.context import Fleet
from app.errors import NodeNotFound, NodePending, NodeRefused, NodeUnreachable
from app.fleet.client import NodeAddress, NodeCall
from app.logs.models import FleetModeChange, FleetModeResult, ModeNodeResult
from app.nodes import repository
from app.nodes import service as node_service
from common.logmodes import Level, LogControl, LogList, Mode, ModeChange, ModeState

T = TypeVar("T")


async def _one_call(
    fleet: Fleet,
    node_id: str,
    command: str,
    fn: Callable[[NodeAddress], Awaitable[NodeCall[T]]],
) -> T:
    node = await fleet.store.run(lambda db: repository.get(db, node_id))
    if node is None:
        raise NodeNotFound(f"no node {node_id!r} has joined; GET /api/v1/nodes lists the fleet")
    if not node.approved:
        raise NodePending(
            f"node {node_id} waits for approval: POST /api/v1/nodes/{node_id}/approve"
        )
    addr = fleet.address(node_id)
    if addr is None:
        raise NodeUnreachable(f"node {node_id} has no known address yet")
    call = await fleet.fanout.call(addr, command, fn)
    if call.ok and call.value is not None:
        return call.value
    if call.status_code is not None and 400 <= call.status_code < 500:
        raise NodeRefused(f"{node_id}: {call.error}", call.status_code)
    raise NodeUnreachable(f"{node_id}: {call.error}")


async def set_mode(fleet: Fleet, node_id: str, mode: Mode) -> ModeState:
    """Switch the node now; the node keeps the mode across its restarts."""
    change = ModeChange(mode=mode)
    return await _one_call(fleet, node_id, "mode", lambda addr: fleet.client.set_mode(addr, change))


async def logs(fleet: Fleet, node_id: str, lines: int, level: Level) -> LogList:
    """The node's recent records, newest last."""
    return await _one_call(
        fleet, node_id, "logs", lambda addr: fleet.client.logs(addr, lines, level)
    )


async def set_fleet_mode(
    fleet: Fleet, control: LogControl, body: FleetModeChange
) -> FleetModeResult:
    """Every target node at once, then the coordinator itself: a node that does not answer
    is reported and keeps its mode; the others switch (each keeps it across restarts)."""
    targets = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
    change = ModeChange(mode=body.mode)
    calls = await fleet.fanout.each(targets, "mode", lambda a: fleet.client.set_mode(a, change))
    nodes = [
        ModeNodeResult(
            node_id=c.node_id,
            ok=c.ok,
            status_code=c.status_code,
            error=c.error,
            latency_ms=c.latency_ms,
            mode=c.value.mode if c.value else None,
        )
        for c in calls
    ]
    own = await asyncio.to_thread(control.set_mode, body.mode) if body.coordinator else None
    ok = sum(1 for n in nodes if n.ok)
    return FleetModeResult(
        mode=body.mode, coordinator=own, ok=ok, failed=len(nodes) - ok, nodes=nodes
    )
