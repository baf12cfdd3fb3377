"""``GET /api/v1/events``: the fleet's live state as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from app.deps import require_operator
from app.events.broadcaster import Subscriber
from app.events.service import LiveFleet
from common.http import AUTH_RESPONSES

router = APIRouter(prefix="/api/v1", tags=["events"], dependencies=[Depends(require_operator)])

KEEPALIVE_S = 15.0
RETRY_MS = 2000


def _live(request: Request) -> LiveFleet:
    live: LiveFleet = request.app.state.live
    return live


async def _stream(live: LiveFleet, sub: Subscriber, keepalive_s: float) -> AsyncIterator[bytes]:
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        yield live.snapshot().encode()
        while not sub.dropped.is_set():
            try:
                event = await asyncio.wait_for(sub.queue.get(), keepalive_s)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if event is None:
                return  # the server is shutting down
            yield event.encode()
    finally:
        live.broadcaster.unsubscribe(sub)


@router.get(
    "/events",
    summary="Live fleet state as server-sent events (snapshot, node, node_removed, session)",
    response_class=StreamingResponse,
    responses={
        **AUTH_RESPONSES,
        200: {
            "content": {"text/event-stream": {}},
            "description": "First a 'snapshot' event (GET /api/v1/nodes as it is now), then "
            "a 'node' event whenever a node's state changes, 'node_removed', and 'session' "
            "when a session starts or stops; a comment every 15 s keeps the line open.",
        },
    },
)
async def events(request: Request) -> StreamingResponse:
    live = _live(request)
    # Subscribed before the snapshot is taken, so nothing falls between the two.
    sub = live.broadcaster.subscribe()
    keepalive_s: float = getattr(request.app.state, "events_keepalive_s", KEEPALIVE_S)
    return StreamingResponse(
        _stream(live, sub, keepalive_s),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
