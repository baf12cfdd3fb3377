"""The recorder's routes: thin, each one call into the recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Response

from node_agent.recorder.selftest import run_selftest
from node_agent.recorder.service import Recorder
from node_agent.responses import error_responses
from node_agent.schemas import (
    LockViewRequest,
    LockViewResult,
    SelfTestRequest,
    SelfTestResult,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
)


def make_router(
    recorder: Recorder, lockview_done: Callable[[str], None] | None = None
) -> APIRouter:
    """Start, stop, self-test, Lock View (``lockview_done``: its tone) and the preview."""
    router = APIRouter()

    @router.post(
        "/api/v1/recording/start",
        response_model=StartResult,
        summary="Arm a recording for start_at_ns (or now); idempotent by command_id",
        responses=error_responses(409, 503),
    )
    async def start(body: StartRequest) -> StartResult:
        # Arming opens the camera and the encoder: off the event loop, so status stays live.
        return await asyncio.to_thread(recorder.start, body)

    @router.post(
        "/api/v1/recording/stop",
        response_model=StopResult,
        summary="Stop the session's recording and return its manifest",
        responses=error_responses(404),
    )
    async def stop(body: StopRequest) -> StopResult:
        return await recorder.stop(body)

    @router.post(
        "/api/v1/selftest",
        response_model=SelfTestResult,
        summary="Record, check, hash and delete a short clip; pass/fail with reasons",
        responses=error_responses(409),
    )
    async def selftest(body: SelfTestRequest | None = None) -> SelfTestResult:
        duration = (body or SelfTestRequest()).duration_s
        return await asyncio.to_thread(run_selftest, recorder, duration)

    @router.post(
        "/api/v1/lockview",
        response_model=LockViewResult,
        summary="Save the framing still of a session and reference it in its manifest",
        responses=error_responses(409, 503),
    )
    async def lockview(body: LockViewRequest) -> LockViewResult:
        result = await asyncio.to_thread(recorder.lockview, body.session_id)
        if lockview_done is not None:
            lockview_done(body.session_id)
        return result

    @router.get(
        "/api/v1/preview.jpg",
        summary="A recent still; answers at once (409) when the camera is busy elsewhere",
        response_class=Response,
        responses={
            **error_responses(409, 503),
            200: {"content": {"image/jpeg": {}}, "description": "A JPEG"},
        },
    )
    async def preview() -> Response:
        data = await asyncio.to_thread(recorder.preview_jpeg)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    return router
