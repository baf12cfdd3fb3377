"""Relaying a node's live view (``GET /api/v1/live.mjpg``) to the operator's browsers.

One upstream stream per node, however many browsers watch it: the first viewer opens
it with the node's API token, the last one to leave closes it. Frames are parsed as
they arrive (each bounded by ``MAX_FRAME_BYTES``) and handed to every viewer through a
queue of one, so a slow browser misses frames instead of stalling the others; the
stream runs on the transport's stream pool, apart from the poller's status calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from app.context import Fleet
from app.errors import NodeNotFound, NodePending, NodeRefused, NodeUnreachable
from app.fleet.client import NodeAddress
from app.fleet.transport import TransportError
from common.errors import CamfleetError
from common.mjpeg import MjpegError, MjpegParser

log = logging.getLogger(__name__)

LIVE_PATH = "/api/v1/live.mjpg"
MAX_FRAME_BYTES = 2 * 1024 * 1024  # a 640x360 JPEG is about 30 KiB; 1920x1080 about 400
IDLE_TIMEOUT_S = 10.0  # the node sends a frame at least this often (or says why not)
_STREAM_CAP = 1 << 62  # the stream as a whole has no end; each frame is bounded


class ViewersFull(CamfleetError):
    """Every viewer slot of this node's live view is taken (a 503)."""

    status_code = 503
    code = "liveview_full"


@dataclass(frozen=True)
class Ended:
    """What a viewer gets last: why the stream ended."""

    reason: str


@dataclass(eq=False)
class RelayViewer:
    """One browser: a queue of one."""

    queue: asyncio.Queue[bytes | Ended] = field(default_factory=lambda: asyncio.Queue(maxsize=1))

    def offer(self, item: bytes | Ended) -> None:
        """Replace the frame not taken yet with ``item`` (an end is never replaced)."""
        if self.queue.full():
            stale = self.queue.get_nowait()
            if isinstance(stale, Ended):
                self.queue.put_nowait(stale)
                return
        self.queue.put_nowait(item)


class NodeRelay:
    """One node's upstream stream and the viewers it feeds."""

    def __init__(self, fleet: Fleet, addr: NodeAddress) -> None:
        self.fleet = fleet
        self.addr = addr
        self.viewers: set[RelayViewer] = set()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None
        self.frames = 0
        self.done = False

    def start(self) -> None:
        """Open the upstream stream."""
        self.task = asyncio.create_task(self._pump(), name=f"liveview-{self.addr.node_id}")

    def _end(self, reason: str) -> None:
        log.info("live view of %s ended: %s", self.addr.node_id, reason)
        self.done = True
        for v in list(self.viewers):
            v.offer(Ended(reason))
        if not self.ready.done():
            self.ready.set_exception(NodeUnreachable(f"{self.addr.node_id}: {reason}"))
            self.ready.exception()  # retrieved: no "never retrieved" warning when unwaited

    async def _pump(self) -> None:
        a, node = self.addr, self.addr.node_id
        headers = {"Authorization": f"Bearer {a.api_token}", "Accept": "multipart/*"}
        try:
            async with self.fleet.client.transport.stream(
                a.host,
                a.port,
                "GET",
                LIVE_PATH,
                headers,
                idle_timeout_s=IDLE_TIMEOUT_S,
                max_bytes=_STREAM_CAP,
            ) as answer:
                if answer.status >= 400:
                    detail = await _error_detail(answer.chunks())
                    self.done = True
                    self.ready.set_exception(_refusal(node, answer.status, detail))
                    self.ready.exception()
                    return
                self.ready.set_result(None)
                reason = await self._relay(answer.chunks())
            self._end(reason)
        except (TransportError, TimeoutError, OSError) as err:
            log.warning("live view of %s: the stream broke: %s", node, err)
            self._end(f"the node's stream broke: {err}")
        except MjpegError as err:
            log.warning("live view of %s: a broken stream: %s", node, err)
            self._end(f"the node sent a broken stream: {err}")

    async def _relay(self, chunks: AsyncIterator[bytes]) -> str:
        parser = MjpegParser(MAX_FRAME_BYTES)
        async for chunk in chunks:
            for part in parser.feed(chunk):
                if part.is_jpeg:
                    self.frames += 1
                    for v in list(self.viewers):
                        v.offer(part.body)
                else:  # the node's own last word: why it ended the stream
                    return part.body.decode(errors="replace")[:500]
            if parser.closed:
                break
        return "the node ended the stream"

    async def close(self) -> None:
        """Stop reading the node (the connection is closed, not reused)."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task


async def _error_detail(chunks: AsyncIterator[bytes]) -> str:
    body = bytearray()
    with contextlib.suppress(TransportError, TimeoutError):
        async for chunk in chunks:
            body += chunk
            if len(body) > 64 * 1024:
                break
    try:
        detail = json.loads(bytes(body)).get("detail")
    except (ValueError, AttributeError):
        detail = None
    return str(detail) if detail else bytes(body[:300]).decode(errors="replace")


def _refusal(node: str, status: int, detail: str) -> CamfleetError:
    if status in (401, 403):
        return NodeUnreachable(f"{node}: the node refused the coordinator's token ({detail})")
    if status in (404, 409, 503):
        return NodeRefused(f"{node}: {detail}", 409 if status == 404 else status)
    return NodeUnreachable(f"{node}: the node answered {status}: {detail}")


class LiveRelays:
    """Every node's relay; at most ``max_viewers`` browsers per node."""

    def __init__(self, fleet: Fleet, max_viewers: int) -> None:
        self.fleet = fleet
        self.max_viewers = max_viewers
        self._relays: dict[str, NodeRelay] = {}
        self._lock = asyncio.Lock()

    def viewers(self, node_id: str) -> int:
        """Browsers watching ``node_id`` now."""
        relay = self._relays.get(node_id)
        return len(relay.viewers) if relay is not None else 0

    async def join(self, node_id: str) -> tuple[NodeRelay, RelayViewer]:
        """A viewer of ``node_id``'s stream once the node has accepted it; the node's
        refusal (409, 503) or its silence (502) otherwise."""
        node = self.fleet.nodes.get(node_id)
        if node is None:
            raise NodeNotFound(f"no node {node_id!r} has joined; GET /api/v1/nodes lists the fleet")
        if not node.approved:
            raise NodePending(
                f"node {node_id} waits for approval: POST /api/v1/nodes/{node_id}/approve"
            )
        addr = self.fleet.address(node_id)
        if addr is None:
            raise NodeUnreachable(f"node {node_id} has no known address yet")
        async with self._lock:
            relay = self._relays.get(node_id)
            if relay is None or relay.done:
                relay = NodeRelay(self.fleet, addr)
                self._relays[node_id] = relay
                relay.start()
            if len(relay.viewers) >= self.max_viewers:
                raise ViewersFull(
                    f"{node_id}'s live view has {len(relay.viewers)} viewers, the most the "
                    "coordinator relays (liveview_max_viewers); close one"
                )
            viewer = RelayViewer()
            relay.viewers.add(viewer)
        try:
            await asyncio.shield(relay.ready)
        except BaseException:
            await self.leave(node_id, relay, viewer)
            raise
        return relay, viewer

    async def leave(self, node_id: str, relay: NodeRelay, viewer: RelayViewer) -> None:
        """The browser went away; the last one closes the node's stream."""
        async with self._lock:
            relay.viewers.discard(viewer)
            if relay.viewers:
                return
            if self._relays.get(node_id) is relay:
                del self._relays[node_id]
        await relay.close()

    def end_all(self, reason: str) -> None:
        """Every browser's stream ends now with ``reason`` (the server is stopping: an
        open stream would hold it for its grace period)."""
        for relay in list(self._relays.values()):
            for viewer in list(relay.viewers):
                viewer.offer(Ended(reason))

    async def close(self) -> None:
        """Close every upstream stream (the coordinator is stopping)."""
        relays, self._relays = list(self._relays.values()), {}
        for relay in relays:
            await relay.close()
