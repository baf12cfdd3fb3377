"""The agent's routes: thin, each one call into the recorder or storage."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.http import AUTH_RESPONSES
from node_agent import __version__
from node_agent.metrics import AgentCollector
from node_agent.recorder.selftest import run_selftest
from node_agent.schemas import (
    ErrorBody,
    Health,
    LockViewRequest,
    LockViewResult,
    NodeStatus,
    RecordingList,
    SelfTestRequest,
    SelfTestResult,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
)
from node_agent.storage import list_recordings, resolve_recording
from node_agent.timelapse.metrics import TimelapseCollector

if TYPE_CHECKING:
    from node_agent.main import AgentContext


def _err(*codes: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        400: "The name is not a recording name",
        404: "No such recording or session on this node",
        409: "The camera is busy, a gate refused, or the session was already recorded",
        503: "The camera or the encoder failed",
    }
    out = dict(AUTH_RESPONSES)
    for c in codes:
        out[c] = {"model": ErrorBody, "description": texts[c]}
    return out


def health_router(ctx: AgentContext) -> APIRouter:
    """``/health``: the one route without a token."""
    router = APIRouter()

    @router.get("/health", response_model=Health, summary="Liveness and version")
    async def health() -> Health:
        return Health(version=__version__, node_id=ctx.node_id)

    return router


def make_router(ctx: AgentContext) -> APIRouter:
    """Every protected route."""
    router = APIRouter()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(AgentCollector(ctx.status))
    if ctx.timelapse is not None:
        registry.register(
            TimelapseCollector(ctx.timelapse.status, ctx.node_id, ctx.settings.cam_id)
        )

    @router.get(
        "/api/v1/status",
        response_model=NodeStatus,
        summary="Everything the dashboard shows for this node",
        responses=_err(),
    )
    async def status() -> NodeStatus:
        return ctx.status()

    @router.post(
        "/api/v1/recording/start",
        response_model=StartResult,
        summary="Arm a recording for start_at_ns (or now); idempotent by command_id",
        responses=_err(409, 503),
    )
    async def start(body: StartRequest) -> StartResult:
        # Arming opens the camera and the encoder: off the event loop, so status stays live.
        return await asyncio.to_thread(ctx.recorder.start, body)

    @router.post(
        "/api/v1/recording/stop",
        response_model=StopResult,
        summary="Stop the session's recording and return its manifest",
        responses=_err(404),
    )
    async def stop(body: StopRequest) -> StopResult:
        return await ctx.recorder.stop(body)

    @router.get(
        "/api/v1/recordings",
        response_model=RecordingList,
        summary="Every recording on this node with its manifest",
        responses=_err(),
    )
    async def recordings() -> RecordingList:
        active = ctx.recorder.status().file_name
        return RecordingList(
            node_id=ctx.node_id,
            recordings=list_recordings(ctx.settings.recordings_path, active),
        )

    @router.get(
        "/api/v1/recordings/{name}",
        summary="Download a recording or manifest (HTTP Range supported)",
        response_class=FileResponse,
        responses=_err(400, 404),
    )
    async def download(name: str) -> FileResponse:
        path = resolve_recording(ctx.settings.recordings_path, name)
        media = "video/mp4" if name.endswith(".mp4") else "application/json"
        if name.endswith(".jpg"):
            media = "image/jpeg"
        return FileResponse(path, media_type=media, filename=name)

    @router.post(
        "/api/v1/selftest",
        response_model=SelfTestResult,
        summary="Record, check, hash and delete a short clip; pass/fail with reasons",
        responses=_err(409),
    )
    async def selftest(body: SelfTestRequest | None = None) -> SelfTestResult:
        duration = (body or SelfTestRequest()).duration_s
        return await asyncio.to_thread(run_selftest, ctx.recorder, duration)

    @router.post(
        "/api/v1/lockview",
        response_model=LockViewResult,
        summary="Save the framing still of a session and reference it in its manifest",
        responses=_err(409, 503),
    )
    async def lockview(body: LockViewRequest) -> LockViewResult:
        return await asyncio.to_thread(ctx.recorder.lockview, body.session_id)

    @router.get(
        "/api/v1/preview.jpg",
        summary="A recent still; answers at once (409) when the camera is busy elsewhere",
        response_class=Response,
        responses={
            **_err(409, 503),
            200: {"content": {"image/jpeg": {}}, "description": "A JPEG"},
        },
    )
    async def preview() -> Response:
        data = await asyncio.to_thread(ctx.recorder.preview_jpeg)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @router.get("/metrics", summary="Prometheus exposition", responses=_err())
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
