"""Node routes: join (fleet token) and the registry (operator token)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from app.deps import DbDep, FleetDep, require_fleet_token, require_operator
from app.fleet.wire import JoinRequest, JoinResponse
from app.nodes import service
from app.nodes.models import NodeList, NodePublic
from common.http import AUTH_RESPONSES, ErrorBody

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


@router.post(
    "/join",
    response_model=JoinResponse,
    summary="A node joins (or heartbeats) with the fleet token",
    dependencies=[Depends(require_fleet_token)],
    responses=AUTH_RESPONSES,
)
async def join(body: JoinRequest, request: Request, db: DbDep, fleet: FleetDep) -> JoinResponse:
    address = request.client.host if request.client else "127.0.0.1"
    return service.join(db, fleet, body, address)


@router.get(
    "",
    response_model=NodeList,
    summary="The fleet and each node's cached status",
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
async def list_nodes(db: DbDep, fleet: FleetDep) -> NodeList:
    return service.list_nodes(db, fleet)


@router.get(
    "/{node_id}",
    response_model=NodePublic,
    summary="One node and its cached status",
    dependencies=[Depends(require_operator)],
    responses={**AUTH_RESPONSES, 404: {"model": ErrorBody, "description": "No such node"}},
)
async def get_node(node_id: str, db: DbDep, fleet: FleetDep) -> NodePublic:
    return service.get_node(db, fleet, node_id)


@router.get(
    "/{node_id}/preview.jpg",
    summary="A recent still from one node (fetched from the node on demand)",
    response_class=Response,
    dependencies=[Depends(require_operator)],
    responses={
        **AUTH_RESPONSES,
        200: {"content": {"image/jpeg": {}}, "description": "A JPEG"},
        404: {"model": ErrorBody, "description": "No such node"},
        409: {"model": ErrorBody, "description": "The node's camera is busy elsewhere"},
        502: {"model": ErrorBody, "description": "The node did not answer"},
    },
)
async def preview(node_id: str, db: DbDep, fleet: FleetDep) -> Response:
    data = await service.preview(db, fleet, node_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
