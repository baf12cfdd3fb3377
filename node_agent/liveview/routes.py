"""``GET /api/v1/live.mjpg``: the live view as multipart/x-mixed-replace."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from common.mjpeg import CONTENT_TYPE, final_part, frame_part
from node_agent.liveview.service import End, LiveView
from node_agent.responses import error_responses


def make_router(live: LiveView) -> APIRouter:
    """The live view's one route."""
    router = APIRouter()

    @router.get(
        "/api/v1/live.mjpg",
        summary="A low-resolution MJPEG stream of the camera; it ends (with its reason) "
        "when the recording needs the CPU",
        response_class=StreamingResponse,
        responses={
            **error_responses(
                404,
                409,
                503,
                t404="The live view is disabled on this node (liveview.enabled)",
                t409="Nothing to show: the camera is idle or busy elsewhere",
                t503="The watchdog turned the view off for a while, or every viewer slot is taken",
            ),
            200: {
                "content": {CONTENT_TYPE: {}},
                "description": "JPEG parts; a stream the node ends closes with a text/plain "
                "part saying why",
            },
        },
    )
    async def live_mjpg() -> StreamingResponse:
        viewer = live.admit()

        async def body() -> AsyncIterator[bytes]:
            try:
                while True:
                    item = await viewer.queue.get()
                    if isinstance(item, End):
                        yield final_part(item.reason)
                        return
                    yield frame_part(item)
                    live.served()
            finally:
                live.leave(viewer)

        return StreamingResponse(
            body(),
            media_type=CONTENT_TYPE,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router
