"""The recordings folder's routes: the list, downloads with Range, confirm and delete."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response

from node_agent.responses import error_responses
from node_agent.schemas import (
    ConfirmRequest,
    ConfirmResult,
    DeleteResult,
    Manifest,
    RecordingList,
)
from node_agent.storage.download import (
    download_responses,
    open_snapshot,
    ranged_response,
)
from node_agent.storage.housekeeper import Housekeeper
from node_agent.storage.recordings import list_recordings, resolve_recording

_DOWNLOAD_RESPONSES = {
    **error_responses(400, 404, 416),
    **download_responses(),
}
_DOWNLOAD_RESPONSES[200]["model"] = Manifest  # a .json download is a manifest


def make_router(
    node_id: str,
    directory: Path,
    active_file: Callable[[], str | None],
    keeper: Housekeeper,
) -> APIRouter:
    """``/api/v1/recordings``, ``/api/v1/recordings/{name}`` and its confirm."""
    router = APIRouter()

    @router.get(
        "/api/v1/recordings",
        response_model=RecordingList,
        summary="Every recording on this node with its manifest",
        responses=error_responses(),
    )
    async def recordings() -> RecordingList:
        listed = await asyncio.to_thread(list_recordings, directory, active_file())
        return RecordingList(node_id=node_id, recordings=listed)

    @router.get(
        "/api/v1/recordings/{name}",
        summary="Download a recording, manifest or still (HTTP Range); a file still being "
        "written is served up to the length it had when the request came",
        response_class=Response,
        responses=_DOWNLOAD_RESPONSES,
    )
    async def download(
        name: str,
        range: Annotated[  # the header's name
            str | None, Header(description="One byte range: bytes=START-END, START- or -N")
        ] = None,
    ) -> Response:
        path = resolve_recording(directory, name)
        snapshot = await asyncio.to_thread(open_snapshot, path)
        return ranged_response(snapshot, name, range)

    @router.post(
        "/api/v1/recordings/{name}/confirm",
        response_model=ConfirmResult,
        summary="A copy elsewhere has this SHA-256: mark the recording offloaded (the manifest "
        "is rewritten durably before the answer)",
        responses=error_responses(
            400,
            404,
            409,
            t409="The SHA-256 is not the manifest's (code checksum_mismatch; nothing changed), "
            "the recording is being written (recording_in_progress), or it has no manifest "
            "(no_manifest)",
        ),
    )
    async def confirm(name: str, body: ConfirmRequest) -> ConfirmResult:
        return await asyncio.to_thread(keeper.confirm, name, body)

    @router.delete(
        "/api/v1/recordings",
        response_model=DeleteResult,
        summary="Delete every offloaded recording (video, manifest, Lock View still); "
        "recordings not yet offloaded are never deleted",
        responses=error_responses(
            400, t400="offloaded=true is missing: only offloaded footage can be deleted"
        ),
    )
    async def delete_offloaded(
        offloaded: Annotated[
            bool, Query(description="Must be true: only offloaded footage can be deleted")
        ] = False,
    ) -> DeleteResult:
        return await asyncio.to_thread(keeper.delete_offloaded, offloaded)

    return router
