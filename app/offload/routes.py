"""Offload routes: jobs, downloads from the archive, and relays to the nodes."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.responses import Response

from app.deps import FleetDep, OffloadDep, require_operator
from app.errors import BadRequest
from app.fleet.wire import (
    NODE_ID_PATTERN,
    SESSION_ID_PATTERN,
    ConfirmRequest,
    ConfirmResult,
    Manifest,
)
from app.offload import downloads, relay, service
from app.offload.models import (
    JOB_ID_PATTERN,
    DeleteFleet,
    OffloadJobList,
    OffloadJobPublic,
    OffloadRequest,
)
from common.http import AUTH_RESPONSES, ErrorBody

Responses = dict[int | str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_NOT_FOUND = _error("No such recording, or it is not archived yet (POST /api/v1/offload)")
_VIDEO: dict[str, Any] = {"content": {"video/mp4": {"schema": {"type": "string"}}}}
RangeHeader = Annotated[
    str | None, Header(description="One byte range, e.g. 'bytes=1048576-' to resume")
]
RecordingIdPath = Annotated[int, Path(ge=1, le=2**62, description="The recording's id")]

jobs = APIRouter(
    prefix="/api/v1/offload",
    tags=["offload"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)


@jobs.post(
    "",
    response_model=OffloadJobPublic,
    status_code=202,
    summary="Pull recordings into the archive, verify them, then confirm them to the nodes",
    description="Every given selector narrows; none: every recording not yet confirmed. "
    "Answers at once with the job; GET /api/v1/offload/{job_id} shows its progress.",
    responses={404: _error("An unknown node, session or recording was named")},
)
async def start_offload(body: OffloadRequest, engine: OffloadDep) -> OffloadJobPublic:
    return await service.start(engine, body)


@jobs.get("", response_model=OffloadJobList, summary="Recent offload jobs, newest first")
async def list_offloads(
    engine: OffloadDep, limit: Annotated[int, Query(ge=1, le=200)] = 20
) -> OffloadJobList:
    return await service.recent(engine, limit)


@jobs.get(
    "/{job_id}",
    response_model=OffloadJobPublic,
    summary="One offload job: bytes done of total, and each file's state",
    responses={404: _error("No such job")},
)
async def get_offload(
    job_id: Annotated[str, Path(pattern=JOB_ID_PATTERN)], engine: OffloadDep
) -> OffloadJobPublic:
    return await service.get(engine, job_id)


archive = APIRouter(
    tags=["downloads"], dependencies=[Depends(require_operator)], responses=AUTH_RESPONSES
)


@archive.get(
    "/api/v1/recordings/{recording_id}/file",
    summary="An archived recording (HTTP Range: 206, or 416 past its end)",
    response_class=Response,
    responses={
        200: {**_VIDEO, "description": "The whole file"},
        206: {**_VIDEO, "description": "The range asked for"},
        404: _NOT_FOUND,
        416: _error("The range starts past the end of the file"),
    },
)
async def recording_file(
    recording_id: RecordingIdPath, engine: OffloadDep, range: RangeHeader = None
) -> Response:
    path = await downloads.recording_file(engine, recording_id, "video")
    return downloads.file_response(path, range, "video/mp4")


@archive.get(
    "/api/v1/recordings/{recording_id}/manifest",
    response_model=Manifest,
    summary="An archived recording's manifest (the one its file was verified against)",
    responses={404: _NOT_FOUND},
)
async def recording_manifest(recording_id: RecordingIdPath, engine: OffloadDep) -> Manifest:
    return await downloads.manifest_of(engine, recording_id)


@archive.get(
    "/api/v1/recordings/{recording_id}/lockview.jpg",
    summary="An archived recording's Lock View still",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "A JPEG"},
        404: _error("No such recording, not archived yet, or it has no Lock View"),
    },
)
async def recording_lockview(recording_id: RecordingIdPath, engine: OffloadDep) -> Response:
    path = await downloads.recording_file(engine, recording_id, "still")
    return downloads.file_response(path, None, "image/jpeg")


@archive.get(
    "/api/v1/sessions/{session_id}/archive",
    summary="A whole session from the archive as one streamed zip (stored) or tar",
    description="Every archived recording of the session, its manifest and its Lock View, "
    "under SESSION_ID/. The length is known in advance (Content-Length).",
    response_class=Response,
    responses={
        200: {
            "content": {"application/zip": {}, "application/x-tar": {}},
            "description": "The archive",
        },
        404: _error("No such session, or nothing of it is archived yet"),
    },
)
async def session_archive(
    session_id: Annotated[str, Path(pattern=SESSION_ID_PATTERN)],
    engine: OffloadDep,
    format: Annotated[Literal["zip", "tar"], Query(description="zip or tar")] = "zip",
) -> Response:
    return await downloads.session_archive(engine, session_id, format)


@archive.delete(
    "/api/v1/recordings",
    response_model=DeleteFleet,
    summary="Every node (or node_id) deletes its offloaded recordings; what each freed",
    description="Only recordings whose manifest says offloaded (a verified copy was "
    "confirmed) are deleted; the node decides and answers with what it removed.",
    responses={
        400: _error("offloaded=true is missing"),
        404: _error("No such node"),
        409: _error("No node can take it (none joined, or the node waits for approval)"),
    },
)
async def delete_offloaded(
    fleet: FleetDep,
    offloaded: Annotated[
        bool | None, Query(description="Must be true: only offloaded footage is deleted")
    ] = None,
    node_id: Annotated[str | None, Query(pattern=NODE_ID_PATTERN)] = None,
) -> DeleteFleet:
    if offloaded is not True:
        raise BadRequest(
            "add ?offloaded=true: only recordings with a confirmed copy elsewhere are deleted"
        )
    return await relay.delete_offloaded(fleet, node_id)


nodes = APIRouter(
    prefix="/api/v1/nodes",
    tags=["nodes"],
    dependencies=[Depends(require_operator)],
    responses=AUTH_RESPONSES,
)
NodeIdPath = Annotated[str, Path(pattern=NODE_ID_PATTERN, description="The node's id")]
NamePath = Annotated[str, Path(max_length=300, description="The file's name on the node")]
_RELAY_ERRORS: Responses = {
    400: _error("Not a recording name (path parts, or not the agent's alphabet)"),
    404: _error("No such node, or no such recording on it"),
    409: _error("The node refused (for a confirm: the checksum differs, or it records)"),
    502: _error("The node did not answer"),
}


@nodes.get(
    "/{node_id}/recordings/{name}",
    summary="A node's recording, manifest or still relayed through (Range passed on)",
    description="Streamed as it arrives; nothing is stored. Only files the coordinator "
    "knows from the node's manifests are relayed.",
    response_class=Response,
    responses={
        200: {
            "content": {"video/mp4": {}, "application/json": {}, "image/jpeg": {}},
            "description": "The file",
        },
        206: {"content": {"video/mp4": {}}, "description": "The range asked for"},
        **_RELAY_ERRORS,
        416: _error("The range starts past the end of the node's file"),
    },
)
async def relay_file(
    node_id: NodeIdPath, name: NamePath, fleet: FleetDep, range: RangeHeader = None
) -> Response:
    return await relay.download(fleet, node_id, name, range)


@nodes.post(
    "/{node_id}/recordings/{name}/confirm",
    response_model=ConfirmResult,
    summary="Confirm a verified copy to the node (for a file copied straight from it)",
    responses=_RELAY_ERRORS,
)
async def relay_confirm(
    node_id: NodeIdPath, name: NamePath, body: ConfirmRequest, fleet: FleetDep
) -> ConfirmResult:
    return await relay.confirm(fleet, node_id, name, body)
