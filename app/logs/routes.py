"""``PUT /api/v1/nodes/{id}/mode`` and ``GET /api/v1/nodes/{id}/logs``: relayed to the node."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from app.deps import FleetDep, require_operator
from app.logs import service
from app.logs.models import FleetModeChange, FleetModeResult
from app.nodes.routes import NodeIdPath
from common.http import AUTH_RESPONSES, ErrorBody
from common.logmodes import Level, LogList, ModeChange, ModeState
from common.logroutes import MAX_LINES

router = APIRouter(
    prefix="/api/v1/nodes",
    tags=["logs"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such node"},
    409: {"model": ErrorBody, "description": "The node waits for approval"},
    422: {"model": ErrorBody, "description": "A bad mode, lines or level"},
    502: {"model": ErrorBody, "description": "The node did not answer"},
}


@router.put(
    "/{node_id}/mode",
    response_model=ModeState,
    summary="Switch one node between production and development mode (kept across restarts)",
    responses=_ERRORS,
)
async def set_node_mode(node_id: NodeIdPath, body: ModeChange, fleet: FleetDep) -> ModeState:
    return await service.set_mode(fleet, node_id, body.mode)


@router.get(
    "/{node_id}/logs",
    response_model=LogList,
    summary="One node's recent log records, newest last",
    responses=_ERRORS,
)
async def node_logs(
    node_id: NodeIdPath,
    fleet: FleetDep,
    lines: Annotated[int, Query(ge=1, le=MAX_LINES, description="How many records")] = 200,
    level: Annotated[Level, Query(description="The lowest level shown")] = "DEBUG",
) -> LogList:
    return await service.logs(fleet, node_id, lines, level)


fleet_router = APIRouter(
    prefix="/api/v1/fleet",
    tags=["logs"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)


@fleet_router.put(
    "/mode",
    response_model=FleetModeResult,
    summary="Switch the coordinator and every node (or node_ids) to one mode at once",
    description="One result per node: a node that does not answer keeps its mode and is "
    "reported. Each program keeps its mode across restarts.",
    responses={
        404: {"model": ErrorBody, "description": "An unknown node id"},
        409: {
            "model": ErrorBody,
            "description": "No node has joined, or the log folder of "
            "the coordinator cannot be written",
        },
    },
)
async def set_fleet_mode(
    body: FleetModeChange, fleet: FleetDep, request: Request
) -> FleetModeResult:
    try:
        return await service.set_fleet_mode(fleet, request.app.state.logs, body)
    except OSError as err:
        raise HTTPException(
            409,
            f"the nodes were switched, the coordinator was not: {err.filename or ''} "
            f"{err.strerror or err}; make its data_dir and logging.dir writable",
        ) from err
