"""Relay ``GET/PUT /api/v1/config`` and ``POST /api/v1/shutdown`` to one node; the node's
refusal (409, 422 with its per-key problems) is passed on with its message."""

from __future__ import annotations

from app.context import Fleet
from app.fleet.wire import ConfigDocument, ConfigResult, ConfigUpdate, ShutdownAnswer
from app.nodes.service import relay_one as _relay


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
