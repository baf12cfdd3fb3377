"""``/api/v1/update/check``, ``/apply`` and ``/status`` (token required, like every route)."""

from __future__ import annotations

from typing import Any

import anyio
from fastapi import APIRouter

from node_agent.responses import error_responses
from node_agent.schemas import ErrorBody
from node_agent.updater.schemas import UpdateApplyRequest, UpdateCheck, UpdateProgress
from node_agent.updater.service import Updater

_APPLY: dict[int | str, dict[str, Any]] = {
    **error_responses(
        404,
        409,
        t404="The feed has no such release",
        t409="A recording is in progress (queued with updater.retry_when_idle), an update "
        "is already running, or the updater is not set up",
    ),
    502: {"model": ErrorBody, "description": "The release feed could not be read"},
}


def make_router(updater: Updater) -> APIRouter:
    """The updater's routes."""
    router = APIRouter(tags=["update"])

    @router.get(
        "/api/v1/update/check",
        response_model=UpdateCheck,
        summary="This node's version and the newest release in the feed",
        responses=error_responses(),
    )
    async def check() -> UpdateCheck:
        return await anyio.to_thread.run_sync(updater.check)

    @router.post(
        "/api/v1/update/apply",
        response_model=UpdateProgress,
        status_code=202,
        summary="Download, verify, install and switch to a release; 409 while recording",
        responses=_APPLY,
    )
    async def apply(body: UpdateApplyRequest) -> UpdateProgress:
        return await anyio.to_thread.run_sync(updater.apply, body.version)

    @router.get(
        "/api/v1/update/status",
        response_model=UpdateProgress,
        summary="The update in progress (or the last one's end) and the history",
        responses=error_responses(),
    )
    async def status() -> UpdateProgress:
        return await anyio.to_thread.run_sync(updater.status)

    return router
