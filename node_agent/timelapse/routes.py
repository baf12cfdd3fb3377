"""The timelapse routes: thin, each one call into ``Timelapse`` (off the event loop).

Included by ``node_agent.main`` behind the agent token, like every route but /health.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from common.http import AUTH_RESPONSES
from node_agent.naming import VIDEOS_DIR
from node_agent.schemas import ErrorBody
from node_agent.storage.recordings import resolve_recording
from node_agent.timelapse.runner import Timelapse
from node_agent.timelapse.schemas import (
    TimelapseRenderRequest,
    TimelapseStartRequest,
    TimelapseStatus,
    TimelapseVideo,
)

_TEXTS = {
    400: "The name is not a video name",
    404: "No still yet, or none for that day",
    409: "Already running, the camera is busy elsewhere, or a render is under way",
    503: "The stills folder or the video encoder failed",
}


def _err(*codes: int) -> dict[int | str, dict[str, Any]]:
    out = dict(AUTH_RESPONSES)
    for c in codes:
        out[c] = {"model": ErrorBody, "description": _TEXTS[c]}
    return out


def make_router(timelapse: Timelapse) -> APIRouter:
    """``/api/v1/timelapse`` and below."""
    router = APIRouter(prefix="/api/v1/timelapse", tags=["timelapse"])

    @router.post(
        "/start",
        response_model=TimelapseStatus,
        summary="Start taking stills on schedule; the camera is held until stop",
        responses=_err(409, 503),
    )
    async def start(body: TimelapseStartRequest | None = None) -> TimelapseStatus:
        interval = (body or TimelapseStartRequest()).interval_s
        return await asyncio.to_thread(timelapse.start, interval)

    @router.post(
        "/stop",
        response_model=TimelapseStatus,
        summary="Stop the timelapse and give the camera back (no-op when stopped)",
        responses=_err(),
    )
    async def stop() -> TimelapseStatus:
        return await asyncio.to_thread(timelapse.stop)

    @router.get(
        "",
        response_model=TimelapseStatus,
        summary="Timelapse state, counters, last still, next capture, disk, gaps, last video",
        responses=_err(),
    )
    async def status() -> TimelapseStatus:
        return await asyncio.to_thread(timelapse.status)

    @router.post(
        "/render",
        response_model=TimelapseVideo,
        summary="Render one day's stills into an MP4 (H.264); answers when it is written",
        responses=_err(404, 409, 503),
    )
    async def render(body: TimelapseRenderRequest) -> TimelapseVideo:
        return await asyncio.to_thread(timelapse.render, body.date, body.fps)

    @router.get(
        "/latest.jpg",
        summary="The last still taken (or the newest on disk)",
        response_class=Response,
        responses={
            **_err(404),
            200: {"content": {"image/jpeg": {}}, "description": "A JPEG"},
        },
    )
    async def latest() -> Response:
        data = await asyncio.to_thread(timelapse.latest_still_bytes)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.get(
        "/videos/{name}",
        summary="Download a rendered timelapse video (HTTP Range supported)",
        response_class=FileResponse,
        responses=_err(400, 404),
    )
    async def video(name: str) -> FileResponse:
        path = resolve_recording(timelapse.folder / VIDEOS_DIR, name)
        return FileResponse(path, media_type="video/mp4", filename=name)

    return router
