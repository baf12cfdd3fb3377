"""``/api/v1/nodes/{id}/config`` and ``/api/v1/nodes/{id}/shutdown`` (operator token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from app.deps import FleetDep, require_operator
from app.fleet.wire import (
    NODE_ID_PATTERN,
    ConfigDocument,
    ConfigResult,
    ConfigUpdate,
    ShutdownAnswer,
)
from app.nodeconfig import service
from common.http import AUTH_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/v1/nodes",
    tags=["nodes"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
NodeIdPath = Annotated[str, Path(pattern=NODE_ID_PATTERN, description="The node's id")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such node"},
    409: {"model": ErrorBody, "description": "The node waits for approval, or refused"},
    502: {"model": ErrorBody, "description": "The node did not answer"},
}


@router.get(
    "/{node_id}/config",
    response_model=ConfigDocument,
    summary="One node's settings file, secrets masked",
    responses=_ERRORS,
)
async def get_config(node_id: NodeIdPath, fleet: FleetDep) -> ConfigDocument:
    return await service.get_config(fleet, node_id)


@router.put(
    "/{node_id}/config",
    response_model=ConfigResult,
    summary="Change one node's settings (the node validates; its 409/422 is passed on)",
    responses={
        **_ERRORS,
        422: {"model": ErrorBody, "description": "A value is not valid; nothing written"},
    },
)
async def put_config(node_id: NodeIdPath, body: ConfigUpdate, fleet: FleetDep) -> ConfigResult:
    return await service.put_config(fleet, node_id, body)


@router.post(
    "/{node_id}/shutdown",
    response_model=ShutdownAnswer,
    status_code=202,
    summary="Finish the node's recording, sync, unmount its disk and power it off",
    responses=_ERRORS,
)
async def shutdown(node_id: NodeIdPath, fleet: FleetDep) -> ShutdownAnswer:
    return await service.shutdown(fleet, node_id)
