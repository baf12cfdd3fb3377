"""Discovery routes: the handshake in which the coordinator proves it holds the fleet token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.deps import FleetDep
from app.discovery import service
from app.fleet.wire import Handshake, HandshakeRequest
from app.nodes.service import peer_address
from common.http import BODY_RESPONSES, ErrorBody

router = APIRouter(prefix="/api/v1/nodes", tags=["discovery"])

# No 401: the handshake takes no token (the coordinator proves itself first).
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **BODY_RESPONSES,
    413: {"model": ErrorBody, "description": "The body is larger than 1 KiB"},
    422: {"model": ErrorBody, "description": "The node id or client nonce is invalid"},
}


@router.post(
    "/handshake",
    response_model=Handshake,
    summary="The coordinator proves it holds the fleet token (no token is sent)",
    description="The first step of the mutual proof (docs/discovery.md): the agent sends a "
    "fresh nonce; the answer carries the coordinator's nonce and an HMAC keyed by the "
    "fleet token. The agent's join then answers with its own HMAC in X-Camfleet-Fleet-Proof "
    "instead of the fleet token. Open to anyone, with a 1 KiB body cap and a bounded store "
    "of outstanding nonces.",
    responses=_RESPONSES,
)
async def handshake(body: HandshakeRequest, request: Request, fleet: FleetDep) -> Handshake:
    peer = peer_address(
        request.client.host if request.client else None,
        request.headers.get("x-forwarded-for"),
        fleet.settings.trusted_proxies,
    )
    return service.handshake(fleet, body, peer)
