"""Recording routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.deps import FleetDep, require_operator
from app.fleet.wire import NODE_ID_PATTERN, SESSION_ID_PATTERN
from app.recordings import service
from app.recordings.models import RecordingListPublic
from common.http import AUTH_RESPONSES

router = APIRouter(
    prefix="/api/v1/recordings",
    tags=["recordings"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)


@router.get(
    "",
    response_model=RecordingListPublic,
    summary="Every recording the fleet knows, with SHA-256, size and offload state",
)
async def list_recordings(
    fleet: FleetDep,
    session_id: Annotated[str | None, Query(pattern=SESSION_ID_PATTERN)] = None,
    node_id: Annotated[str | None, Query(pattern=NODE_ID_PATTERN)] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=5000, description="At most this many (default: all)")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000, description="Skip the newest N")] = 0,
) -> RecordingListPublic:
    return await fleet.store.run(
        lambda db: service.list_recordings(db, session_id, node_id, limit, offset)
    )
