"""Session routes: start, stop, list, show, edit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from app.context import Fleet
from app.deps import FleetDep, require_operator
from app.fleet.wire import SESSION_ID_PATTERN
from app.sessions import service
from app.sessions.models import (
    LockViewFleet,
    SessionCreate,
    SessionList,
    SessionPublic,
    SessionUpdate,
)
from common.http import AUTH_RESPONSES, ErrorBody

router = APIRouter(
    prefix="/api/v1/sessions",
    tags=["sessions"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such session (or node)"}
}
SessionIdPath = Annotated[str, Path(pattern=SESSION_ID_PATTERN, description="The session's id")]


def _announce(fleet: Fleet, session: SessionPublic) -> None:
    """Tell the live pages (GET /api/v1/events) that a session started or stopped."""
    if fleet.live is not None:
        fleet.live.publish_session(session.model_dump(mode="json"))


@router.post(
    "",
    response_model=SessionPublic,
    status_code=201,
    summary="Start a synchronized recording on every node (or on node_ids)",
    description="Picks start_at = now + lead and sends it to every node at once, each with "
    "its own timeout. Nodes that fail are reported per node; the others record.",
    responses={**_404, 409: {"model": ErrorBody, "description": "No node has joined"}},
)
async def start_session(body: SessionCreate, fleet: FleetDep) -> SessionPublic:
    session = await service.start(fleet, body)
    _announce(fleet, session)
    return session


@router.post(
    "/{session_id}/stop",
    response_model=SessionPublic,
    summary="Stop the session everywhere and collect its manifests",
    responses=_404,
)
async def stop_session(session_id: SessionIdPath, fleet: FleetDep) -> SessionPublic:
    session = await service.stop(fleet, session_id)
    _announce(fleet, session)
    return session


@router.post(
    "/{session_id}/lockview",
    response_model=LockViewFleet,
    summary="Lock View: save a framing still on every node of the session",
    responses=_404,
)
async def lockview(session_id: SessionIdPath, fleet: FleetDep) -> LockViewFleet:
    return await service.lockview(fleet, session_id)


@router.get("", response_model=SessionList, summary="Recent sessions, newest first")
async def list_sessions(
    fleet: FleetDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[
        int, Query(ge=0, le=1_000_000, description="Skip this many of the newest (paging)")
    ] = 0,
) -> SessionList:
    return await service.list_recent(fleet, limit, offset)


@router.get(
    "/{session_id}",
    response_model=SessionPublic,
    summary="One session: start_at, per-node results, manifests, start skew",
    responses=_404,
)
async def get_session(session_id: SessionIdPath, fleet: FleetDep) -> SessionPublic:
    return await service.get(fleet, session_id)


@router.patch(
    "/{session_id}",
    response_model=SessionPublic,
    summary="Edit a session's name and notes (metadata), at any time",
    description="Only what is sent changes: metadata merges key by key (null removes a "
    "key). The answer's edited_at says when it was last changed.",
    responses=_404,
)
async def edit_session(
    session_id: SessionIdPath, body: SessionUpdate, fleet: FleetDep
) -> SessionPublic:
    session = await service.edit(fleet, session_id, body)
    _announce(fleet, session)
    return session
