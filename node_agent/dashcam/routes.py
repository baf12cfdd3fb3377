"""The dashcam routes: thin, each one call into ``Dashcam``.

Included by ``node_agent.main`` behind the agent token when ``dashcam.enabled``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from common.http import AUTH_RESPONSES
from node_agent.dashcam.schemas import DashcamReport, DashcamStatus
from node_agent.dashcam.service import Dashcam
from node_agent.schemas import ErrorBody

MAX_LIMIT = 500


def _err(*codes: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        409: "A cycle is running (here, or another run holds the staging folder's lock)",
    }
    out = dict(AUTH_RESPONSES)
    for c in codes:
        out[c] = {"model": ErrorBody, "description": texts[c]}
    return out


def make_router(dashcam: Dashcam) -> APIRouter:
    """``/api/v1/dashcam`` and ``/api/v1/dashcam/run``."""
    router = APIRouter(prefix="/api/v1/dashcam", tags=["dashcam"])

    @router.get(
        "",
        response_model=DashcamReport,
        summary="The dashcam loop's state and counters, and the newest ingest manifests",
        responses=_err(),
    )
    async def report(
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Manifests to list.")] = 50,
    ) -> DashcamReport:
        manifests = await asyncio.to_thread(dashcam.ledger.manifests)
        newest = list(reversed(manifests[-limit:]))
        return DashcamReport(
            status=dashcam.status(), manifests=newest, total_manifests=len(manifests)
        )

    @router.post(
        "/run",
        response_model=DashcamStatus,
        summary="Run one cycle now (copy and upload when allowed); answers when it is done",
        responses=_err(409),
    )
    async def run() -> DashcamStatus:
        return await dashcam.run_now()

    return router
