"""``GET /api/v1/nodes/{node_id}/live.mjpg``: a node's live view, relayed."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from app.deps import require_operator
from app.liveview.service import Ended, LiveRelays
from app.nodes.routes import NodeIdPath
from common.http import AUTH_RESPONSES, ErrorBody
from common.mjpeg import CONTENT_TYPE, final_part, frame_part

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"])


@router.get(
    "/{node_id}/live.mjpg",
    summary="A node's live view (MJPEG), relayed with the node's token; it ends with the "
    "node's reason when the node turns the view off",
    response_class=StreamingResponse,
    dependencies=[Depends(require_operator)],
    responses={
        **AUTH_RESPONSES,
        200: {"content": {CONTENT_TYPE: {}}, "description": "JPEG parts, then why it ended"},
        404: {"model": ErrorBody, "description": "No such node"},
        409: {
            "model": ErrorBody,
            "description": "Nothing to show (the camera is idle or busy), the view is "
            "disabled on the node, or the node waits for approval",
        },
        502: {"model": ErrorBody, "description": "The node did not answer"},
        503: {
            "model": ErrorBody,
            "description": "The node turned the view off for a while, or every viewer slot "
            "is taken",
        },
    },
)
async def live(node_id: NodeIdPath, request: Request) -> StreamingResponse:
    relays: LiveRelays = request.app.state.liveview
    relay, viewer = await relays.join(node_id)

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                item = await viewer.queue.get()
                if isinstance(item, Ended):
                    yield final_part(item.reason)
                    return
                yield frame_part(item)
        finally:
            await relays.leave(node_id, relay, viewer)

    return StreamingResponse(
        body(),
        media_type=CONTENT_TYPE,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
