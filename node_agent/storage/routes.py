"""The recordings folder's routes: the list with manifests, and downloads with Range."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from node_agent.responses import error_responses
from node_agent.schemas import RecordingList
from node_agent.storage.recordings import list_recordings, resolve_recording


def make_router(node_id: str, directory: Path, active_file: Callable[[], str | None]) -> APIRouter:
    """``/api/v1/recordings`` and ``/api/v1/recordings/{name}``."""
    router = APIRouter()

    @router.get(
        "/api/v1/recordings",
        response_model=RecordingList,
        summary="Every recording on this node with its manifest",
        responses=error_responses(),
    )
    async def recordings() -> RecordingList:
        return RecordingList(node_id=node_id, recordings=list_recordings(directory, active_file()))

    @router.get(
        "/api/v1/recordings/{name}",
        summary="Download a recording or manifest (HTTP Range supported)",
        response_class=FileResponse,
        responses=error_responses(400, 404),
    )
    async def download(name: str) -> FileResponse:
        path = resolve_recording(directory, name)
        media = "video/mp4" if name.endswith(".mp4") else "application/json"
        if name.endswith(".jpg"):
            media = "image/jpeg"
        return FileResponse(path, media_type=media, filename=name)

    return router
