"""Relay ``GET/PUT /api/v1/config`` and ``POST /api/v1/shutdown`` to one node; the node's
refusal (409, 422 with its per-key problems) is passed on with its message."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.context import Fleet
from app.errors import NodeRefused, NodeUnreachable
from app.fleet.client import NodeAddress, NodeCall
from app.fleet.wire import ConfigDocument, ConfigResult, ConfigUpdate, ShutdownAnswer
from app.nodes import service as node_service

T = TypeVar("T")


async def _relay(
    fleet: Fleet,
    node_id: str,
    command: str,
    fn: Callable[[NodeAddress], Awaitable[NodeCall[T]]],
) -> T:
    """One call to an approved node; its answer, or its refusal raised with its status."""
    addrs = await fleet.store.run(lambda db: node_service.addresses(db, fleet, [node_id]))
    if not addrs:
        raise NodeUnreachable(f"node {node_id} has no known address yet")
    # through each(): the node's cached status is re-read after a change or a shutdown
    (call,) = await fleet.fanout.each(addrs[:1], command, fn, deadline_s=15.0)
    if call.ok and call.value is not None:
        return call.value
    if call.status_code is not None and 400 <= call.status_code < 500:
        refused = NodeRefused(f"{node_id}: {call.error}", call.status_code)
        refused.details = call.error_items
        raise refused
    raise NodeUnreachable(f"{node_id}: {call.error}")


async def get_config(fleet: Fleet, node_id: str) -> ConfigDocument:
    """The node's settings, secrets masked."""
    return await _relay(fleet, node_id, "config_get", fleet.client.config_get)


async def put_config(fleet: Fleet, node_id: str, body: ConfigUpdate) -> ConfigResult:
    """Merge a change into the node's settings file."""
    return await _relay(
        fleet, node_id, "config_put", lambda addr: fleet.client.config_put(addr, body)
    )


async def shutdown(fleet: Fleet, node_id: str) -> ShutdownAnswer:
    """Begin the node's shutdown sequence."""
    return await _relay(fleet, node_id, "shutdown", fleet.client.shutdown)
