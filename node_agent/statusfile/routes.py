"""The observability spec's status server, on the agent: ``/status``, ``/latest/photo``,
``/latest/video``, ``/logs`` and ``/config``.

Included by ``node_agent.main`` behind the agent token, like every route but /health.
Each reads files or caches on a request and nothing in between: none touches the
camera, and while nobody asks they cost nothing. ``/logs`` and ``/config`` are
``/api/v1/logs`` and ``/api/v1/config`` under the spec's names (the same code, the same
redaction of secrets).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Literal, cast

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import JSONResponse

from common.logmodes import Level, LogControl, LogList
from common.logroutes import MAX_LINES
from node_agent.config.schemas import ConfigDocument
from node_agent.config.service import NodeConfig
from node_agent.naming import VIDEOS_DIR
from node_agent.responses import error_responses
from node_agent.schemas import ErrorBody
from node_agent.statusfile.errors import NoVideo, StatusFileUnavailable
from node_agent.statusfile.schemas import StatusDocument
from node_agent.statusfile.service import StatusFileService
from node_agent.storage.download import (
    download_responses,
    open_snapshot,
    ranged_response,
)
from node_agent.timelapse.runner import Timelapse

# The spec writes ``level=error``; the ring's levels are upper case. Both are taken.
AnyCaseLevel = Literal[
    "DEBUG",
    "INFO",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "debug",
    "info",
    "warning",
    "error",
    "critical",
]


def newest_video(folder: Path) -> Path | None:
    """The newest timelapse video in ``folder``: names carry the day (…_YYYYMMDD.mp4), so
    the last by name, then by modification time; hidden and partial files are skipped."""
    try:
        entries = [e for e in os.scandir(folder) if e.name.endswith(".mp4")]
    except (FileNotFoundError, NotADirectoryError):
        return None
    videos = [e for e in entries if not e.name.startswith(".") and e.is_file()]
    if not videos:
        return None
    best = max(videos, key=lambda e: (e.name, e.stat().st_mtime_ns))
    return Path(best.path)


def make_router(
    service: StatusFileService, timelapse: Timelapse, logs: LogControl, config: NodeConfig
) -> APIRouter:
    """The status server's routes over the status file, the timelapse folder, the log ring
    and the settings file."""
    router = APIRouter(tags=["status file"])

    @router.get(
        "/status",
        response_model=StatusDocument,
        summary="The status file's content (what the node is doing; other programs may add fields)",
        responses=error_responses(
            404, t404="The status file is switched off (status_file empty) or not written yet"
        ),
    )
    async def status() -> JSONResponse:
        path = service.path
        if path is None:
            raise StatusFileUnavailable(
                "the status file is switched off on this node: set status_file in its "
                "settings (e.g. /run/camfleet/status.json) and restart the agent"
            )
        doc = await asyncio.to_thread(service.read)
        if not doc:
            raise StatusFileUnavailable(
                f"the status file {path} is not written yet (or is not a JSON object): the "
                "agent rewrites it after each capture and state change, and every minute; "
                "check that its folder is writable"
            )
        return JSONResponse(doc, headers={"Cache-Control": "no-store"})

    @router.get(
        "/latest/photo",
        summary="The newest timelapse still (JPEG)",
        response_class=Response,
        responses={
            **error_responses(404, t404="No timelapse still on this node yet"),
            200: {
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                "description": "A JPEG",
            },
        },
    )
    async def latest_photo() -> Response:
        data = await asyncio.to_thread(timelapse.latest_still_bytes)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    video_answers = download_responses()
    mp4 = {"video/mp4": {"schema": {"type": "string", "format": "binary"}}}
    video_answers[200] = {**video_answers[200], "content": mp4}
    video_answers[206] = {**video_answers[206], "content": mp4}

    @router.get(
        "/latest/video",
        summary="The newest rendered timelapse video (MP4, HTTP Range supported)",
        response_class=Response,
        responses={
            **error_responses(404, t404="No timelapse video rendered on this node yet"),
            416: {"model": ErrorBody, "description": "The Range starts past the end"},
            **video_answers,
        },
    )
    async def latest_video(
        range: Annotated[  # the header's name
            str | None, Header(description="One byte range: bytes=START-END, START- or -N")
        ] = None,
    ) -> Response:
        folder = timelapse.folder / VIDEOS_DIR
        path = await asyncio.to_thread(newest_video, folder)
        if path is None:
            raise NoVideo(
                f"no timelapse video in {folder} yet: render a day's stills with "
                "POST /api/v1/timelapse/render"
            )
        try:
            snapshot = await asyncio.to_thread(open_snapshot, path)
        except FileNotFoundError as err:
            raise NoVideo(f"{path.name} was deleted just now; ask again") from err
        return ranged_response(snapshot, path.name, range)

    @router.get(
        "/logs",
        response_model=LogList,
        summary="Recent log records, newest last (GET /api/v1/logs under the spec's name)",
        responses=error_responses(422, t422="lines outside 1..5000 or an unknown level"),
    )
    async def recent_logs(
        lines: Annotated[
            int, Query(ge=1, le=MAX_LINES, description="How many records (default 50)")
        ] = 50,
        level: Annotated[
            AnyCaseLevel, Query(description="The lowest level shown, in either case (error)")
        ] = "DEBUG",
    ) -> LogList:
        floor = cast(Level, level.upper())
        return LogList(mode=logs.mode, entries=logs.ring.entries(lines, floor))

    @router.get(
        "/config",
        response_model=ConfigDocument,
        summary="The node's settings, secrets masked (GET /api/v1/config under the spec's name)",
        responses=error_responses(422, t422="The settings file on disk does not validate"),
    )
    async def node_config() -> ConfigDocument:
        return await asyncio.to_thread(config.get)

    return router
