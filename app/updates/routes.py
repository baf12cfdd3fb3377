"""``POST/GET /api/v1/fleet/update`` and one node's ``update/check``, relayed."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from app.deps import FleetDep, require_operator
from app.fleet.wire import UpdateCheck
from app.nodes.routes import NodeIdPath
from app.nodes.service import relay_one
from app.updates.models import FleetUpdateRequest, FleetUpdateRun
from app.updates.service import FleetUpdater
from common.http import AUTH_RESPONSES, ErrorBody


def get_updater(request: Request) -> FleetUpdater:
    """The app's fleet updater."""
    updater: FleetUpdater = request.app.state.updates
    return updater


UpdaterDep = Annotated[FleetUpdater, Depends(get_updater)]

router = APIRouter(
    prefix="/api/v1",
    tags=["updates"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
_NODE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such node"},
    409: {"model": ErrorBody, "description": "The node waits for approval"},
    502: {"model": ErrorBody, "description": "The node did not answer"},
}


@router.post(
    "/fleet/update",
    status_code=202,
    response_model=FleetUpdateRun,
    summary="Update the fleet: one node at a time, never a recording node, stop at a failure",
    description="Each node installs the release beside its current version, restarts, "
    "health-checks and rolls back by itself; this waits for each node's verdict before the "
    "next. GET /api/v1/fleet/update shows the progress.",
    responses={
        404: {"model": ErrorBody, "description": "An unknown node id"},
        409: {
            "model": ErrorBody,
            "description": "A fleet update is running, no node has joined, or one waits "
            "for approval",
        },
    },
)
async def fleet_update(body: FleetUpdateRequest, updater: UpdaterDep) -> FleetUpdateRun:
    return await updater.begin(body)


@router.get(
    "/fleet/update",
    response_model=FleetUpdateRun,
    summary="The fleet update under way, or the last one",
    responses={404: {"model": ErrorBody, "description": "No fleet update has run yet"}},
)
async def fleet_update_progress(updater: UpdaterDep) -> FleetUpdateRun:
    return updater.current()


@router.get(
    "/nodes/{node_id}/update/check",
    response_model=UpdateCheck,
    summary="What one node runs and what its release feed offers",
    responses=_NODE_ERRORS,
)
async def node_update_check(node_id: NodeIdPath, fleet: FleetDep) -> UpdateCheck:
    return await relay_one(
        fleet, node_id, "update_check", lambda addr: fleet.client.update_check(addr)
    )
