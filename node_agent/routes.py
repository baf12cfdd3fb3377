"""The node's own routes: ``/health`` (no token), the status and the Prometheus exposition."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from common.http import BODY_RESPONSES, METRICS_RESPONSES
from node_agent import __version__
from node_agent.responses import error_responses
from node_agent.schemas import Health, NodeStatus
from node_agent.status_stream import StatusStream, StatusStreamResponse


def health_router(node_id: str, started_monotonic: float) -> APIRouter:
    """``/health``: the one route without a token."""
    router = APIRouter()

    @router.get(
        "/health",
        response_model=Health,
        summary="Liveness and version",
        responses=BODY_RESPONSES,  # AuthGate answers these before any route
    )
    async def health() -> Health:
        uptime = round(time.monotonic() - started_monotonic, 3)
        return Health(version=__version__, node_id=node_id, uptime_seconds=uptime)

    return router


def status_router(status: Callable[[], NodeStatus]) -> APIRouter:
    """``/api/v1/status``, from caches."""
    router = APIRouter()

    @router.get(
        "/api/v1/status",
        response_model=NodeStatus,
        summary="Everything the dashboard shows for this node",
        responses=error_responses(),
    )
    async def node_status() -> NodeStatus:
        return status()

    return router


def metrics_router(registry: CollectorRegistry) -> APIRouter:
    """``/metrics``, rendered from caches on a worker thread (the loop keeps serving)."""
    router = APIRouter()

    @router.get(
        "/metrics",
        summary="Prometheus exposition",
        response_class=Response,
        responses={**error_responses(), **METRICS_RESPONSES},
    )
    async def metrics() -> Response:
        body = await anyio.to_thread.run_sync(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router


def status_stream_router(stream: StatusStream) -> APIRouter:
    """``/api/v1/status/stream``: the status as server-sent events."""
    router = APIRouter()

    @router.get(
        "/api/v1/status/stream",
        summary="The status as server-sent events: at once, then on every change",
        response_class=StatusStreamResponse,
        status_code=200,  # the response class takes none, so the schema is told
        responses={
            **error_responses(),
            200: {
                "content": {"text/event-stream": {}},
                "description": "A 'status' event (the body of GET /api/v1/status) at once, "
                "then one whenever it changes (at most one per status_stream_debounce_s), "
                "and a ': hb' comment every status_stream_heartbeat_s.",
            },
        },
    )
    async def node_status_stream() -> StatusStreamResponse:
        return StatusStreamResponse(stream)

    return router
