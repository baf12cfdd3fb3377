"""Node routes: challenge and join (fleet token), the registry (operator token)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from app.deps import FleetDep, require_fleet_token, require_operator
from app.fleet.wire import (
    NODE_ID_PATTERN,
    JoinChallenge,
    JoinChallengeRequest,
    JoinRequest,
    JoinResponse,
)
from app.nodes import service
from app.nodes.models import NodeList, NodePublic
from common.http import AUTH_RESPONSES, ErrorBody
from common.identity import NONCE_HEADER, SIGNATURE_HEADER

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])

_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "No such node"}}
NodeIdPath = Annotated[str, Path(pattern=NODE_ID_PATTERN, description="The node's id")]


@router.post(
    "/challenge",
    response_model=JoinChallenge,
    summary="A single-use nonce that the node's next join must sign",
    dependencies=[Depends(require_fleet_token)],
    responses=AUTH_RESPONSES,
)
async def challenge(body: JoinChallengeRequest, fleet: FleetDep) -> JoinChallenge:
    return service.challenge(fleet, body)


@router.post(
    "/join",
    response_model=JoinResponse,
    summary="A node joins (or heartbeats) with the fleet token and a signed challenge",
    description="The fleet token admits a *new* node, which registers its Ed25519 public key. "
    f"Every join of a known node must carry {NONCE_HEADER} (from POST /api/v1/nodes/challenge) "
    f"and {SIGNATURE_HEADER} (the node's signature over the nonce and this body); anything "
    "else is refused with 409 and changes nothing. The node is called back at the TCP peer "
    "address of this request and the declared port. Instead of the fleet token, a join may "
    "answer a handshake (POST /api/v1/nodes/handshake) with X-Camfleet-Fleet-Proof and "
    "sealed_api_token (docs/discovery.md).",
    dependencies=[Depends(require_fleet_token)],
    responses={
        **AUTH_RESPONSES,
        409: {"model": ErrorBody, "description": "The join could not prove the node's identity"},
    },
)
async def join(body: JoinRequest, request: Request, fleet: FleetDep) -> JoinResponse:
    peer = service.peer_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        fleet.settings.trusted_proxies,
    )
    return await service.join(
        fleet,
        body,
        await request.body(),
        request.headers.get(NONCE_HEADER),
        request.headers.get(SIGNATURE_HEADER),
        peer,
        mutual=request.headers.get("authorization") is None,
    )


@router.get(
    "",
    response_model=NodeList,
    summary="The fleet and each node's cached status",
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
async def list_nodes(fleet: FleetDep) -> NodeList:
    return service.list_nodes(fleet)


@router.get(
    "/{node_id}",
    response_model=NodePublic,
    summary="One node and its cached status",
    dependencies=[Depends(require_operator)],
    responses={**AUTH_RESPONSES, **_404},
)
async def get_node(node_id: NodeIdPath, fleet: FleetDep) -> NodePublic:
    return service.get_node(fleet, node_id)


@router.delete(
    "/{node_id}",
    status_code=204,
    response_class=Response,
    summary="Remove a node and its cached state; its next join registers it afresh",
    dependencies=[Depends(require_operator)],
    responses={**AUTH_RESPONSES, **_404},
)
async def remove_node(node_id: NodeIdPath, fleet: FleetDep) -> Response:
    await service.remove(fleet, node_id)
    return Response(status_code=204)


@router.post(
    "/{node_id}/approve",
    response_model=NodePublic,
    summary="Approve a node that waits (approve_new_nodes): it is called and joins sessions",
    dependencies=[Depends(require_operator)],
    responses={**AUTH_RESPONSES, **_404},
)
async def approve_node(node_id: NodeIdPath, fleet: FleetDep) -> NodePublic:
    return await service.approve(fleet, node_id)


@router.get(
    "/{node_id}/preview.jpg",
    summary="A recent still from one node (fetched from the node on demand)",
    response_class=Response,
    dependencies=[Depends(require_operator)],
    responses={
        **AUTH_RESPONSES,
        **_404,
        200: {"content": {"image/jpeg": {}}, "description": "A JPEG"},
        409: {
            "model": ErrorBody,
            "description": "The node's camera is busy, or it waits for approval",
        },
        502: {"model": ErrorBody, "description": "The node did not answer"},
    },
)
async def preview(node_id: NodeIdPath, fleet: FleetDep) -> Response:
    data = await service.preview(fleet, node_id)
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
