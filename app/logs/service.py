"""Set a node's mode and read its logs: one call to the node, its refusal passed on."""

from __future__ import annotations

import asyncio

from app.context import Fleet
from app.fleet.results import call_fields
from app.logs.models import FleetModeChange, FleetModeResult, ModeNodeResult
from app.nodes import service as node_service
from app.nodes.service import relay_one as _relay
from common.logmodes import Level, LogControl, LogList, Mode, ModeChange, ModeState


async def set_mode(fleet: Fleet, node_id: str, mode: Mode) -> ModeState:
    """Switch the node now; the node keeps the mode across its restarts."""
    change = ModeChange(mode=mode)
    return await _relay(fleet, node_id, "mode", lambda addr: fleet.client.set_mode(addr, change))


async def logs(fleet: Fleet, node_id: str, lines: int, level: Level) -> LogList:
    """The node's recent records, newest last."""
    return await _relay(fleet, node_id, "logs", lambda addr: fleet.client.logs(addr, lines, level))


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
            **call_fields(c),
            mode=c.value.mode if c.value else None,
        )
        for c in calls
    ]
    own = await asyncio.to_thread(control.set_mode, body.mode) if body.coordinator else None
    ok = sum(1 for n in nodes if n.ok)
    return FleetModeResult(
        mode=body.mode, coordinator=own, ok=ok, failed=len(nodes) - ok, nodes=nodes
    )
