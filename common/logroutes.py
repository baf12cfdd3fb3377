"""``GET /api/v1/logs`` and ``GET/PUT /api/v1/mode``, the same on agent and coordinator."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.params import Depends

from common.http import AUTH_RESPONSES, ErrorBody
from common.logmodes import Level, LogControl, LogList, ModeChange, ModeState

MAX_LINES = 5000

_422: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorBody, "description": "lines outside 1..5000 or an unknown level"}
}


def make_router(control: LogControl, dependencies: Sequence[Depends]) -> APIRouter:
    """The routes over ``control``, each behind ``dependencies`` (the token)."""
    router = APIRouter(
        prefix="/api/v1",
        tags=["logs"],
        dependencies=list(dependencies),
        responses=AUTH_RESPONSES,
    )

    @router.get(
        "/logs",
        response_model=LogList,
        summary="Recent log records from the in-memory ring, newest last",
        description="The ring keeps the last 500 records at WARNING and above and the last "
        "500 below it, in both modes.",
        responses=_422,
    )
    async def logs(
        lines: Annotated[int, Query(ge=1, le=MAX_LINES, description="How many records")] = 200,
        level: Annotated[Level, Query(description="The lowest level shown")] = "DEBUG",
    ) -> LogList:
        return LogList(mode=control.mode, entries=control.ring.entries(lines, level))

    @router.get("/mode", response_model=ModeState, summary="Production or development mode")
    async def get_mode() -> ModeState:
        return control.state()

    @router.put(
        "/mode",
        response_model=ModeState,
        summary="Switch between production and development now; kept across restarts",
        responses={
            **_422,
            409: {"model": ErrorBody, "description": "The log folder cannot be written"},
        },
    )
    async def put_mode(body: ModeChange) -> ModeState:
        try:
            return await asyncio.to_thread(control.set_mode, body.mode)
        except OSError as err:
            raise HTTPException(
                409,
                f"cannot switch to {body.mode} mode: {err.filename or control.log_path}: "
                f"{err.strerror or err}; make data_dir and logging.dir writable by this "
                "program (or point logging.dir elsewhere)",
            ) from err

    return router
