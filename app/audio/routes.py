"""Fleet audio routes: the audio track toggle."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from app.audio import service
from app.audio.models import AudioFleetResult, AudioFleetToggle
from app.deps import FleetDep, require_operator
from common.http import AUTH_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/v1/audio",
    tags=["audio"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "An unknown node id"},
    409: {"model": ErrorBody, "description": "No node has joined"},
}


@router.put(
    "",
    response_model=AudioFleetResult,
    summary="Record an audio track (camera.audio) on every node, or on node_ids",
    description="Sent to every node at once. A node that is recording refuses (409, reported "
    "per node) and keeps its setting; each node keeps the setting across restarts.",
    responses=_ERRORS,
)
async def set_audio(body: AudioFleetToggle, fleet: FleetDep) -> AudioFleetResult:
    return await service.set_audio(fleet, body)
