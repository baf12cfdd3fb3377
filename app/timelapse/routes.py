"""Fleet timelapse routes: start and stop on every node (or on node_ids)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.deps import FleetDep, require_operator
from app.timelapse import service
from app.timelapse.models import TimelapseFleetResult, TimelapseFleetStart, TimelapseFleetStop
from common.http import AUTH_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/v1/timelapse",
    tags=["timelapse"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "An unknown node id"},
    409: {"model": ErrorBody, "description": "No node has joined"},
}


@router.post(
    "/start",
    response_model=TimelapseFleetResult,
    summary="Start the timelapse on every node (or on node_ids)",
    description="Sent to every node at once, each with its own timeout. A node that refuses "
    "(already running, camera busy recording) or does not answer is reported per node; "
    "the others start.",
    responses=_ERRORS,
)
async def start_timelapse(
    fleet: FleetDep, body: TimelapseFleetStart | None = None
) -> TimelapseFleetResult:
    return await service.start(fleet, body or TimelapseFleetStart())


@router.post(
    "/stop",
    response_model=TimelapseFleetResult,
    summary="Stop the timelapse on every node (or on node_ids)",
    responses=_ERRORS,
)
async def stop_timelapse(
    fleet: FleetDep, body: TimelapseFleetStop | None = None
) -> TimelapseFleetResult:
    return await service.stop(fleet, body or TimelapseFleetStop())
