"""The coordinator's relay over a stand-in transport: frames fan out to viewers through a
queue of one (a slow viewer never holds a fast one), an oversized or broken frame ends the
stream with the reason, the node's refusal passes on, the last viewer closes the upstream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from app.errors import NodeRefused
from app.fleet.client import NodeAddress
from app.fleet.transport import StreamAnswer
from app.liveview.service import MAX_FRAME_BYTES, Ended, LiveRelays, ViewersFull
from common.mjpeg import final_part, frame_part

JPEG = b"\xff\xd8" + b"x" * 100 + b"\xff\xd9"


class Upstream:
    """A node's stream: parts put on a queue by the test, None to end it."""

    def __init__(self, status: int = 200, body: bytes = b"") -> None:
        self.status, self.body = status, body
        self.parts: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.opened = 0
        self.closed = asyncio.Event()

    @contextlib.asynccontextmanager
    async def stream(self, *_a: Any, **_k: Any) -> AsyncIterator[StreamAnswer]:
        self.opened += 1

        async def chunks() -> AsyncIterator[bytes]:
            if self.status != 200:
                yield self.body
                return
            while (part := await self.parts.get()) is not None:
                yield part

        try:
            yield StreamAnswer(self.status, "multipart/x-mixed-replace", None, {}, chunks())
        finally:
            self.closed.set()


def relays(upstream: Upstream, max_viewers: int = 4) -> LiveRelays:
    fleet: Any = SimpleNamespace(
        nodes={"cam-c": SimpleNamespace(approved=True)},
        address=lambda _n: NodeAddress("cam-c", "127.0.0.1", 1, "tok"),
        client=SimpleNamespace(transport=upstream),
    )
    return LiveRelays(fleet, max_viewers)


async def drain_until(queue: asyncio.Queue[bytes | Ended], want: int) -> int:
    got = 0
    while got < want:
        item = await asyncio.wait_for(queue.get(), 5)
        assert isinstance(item, bytes)
        got += 1
    return got


def test_a_slow_viewer_never_holds_a_fast_one_and_the_last_closes_the_node() -> None:
    async def scenario() -> None:
        up = Upstream()
        lr = relays(up)
        join = asyncio.create_task(lr.join("cam-c"))
        await asyncio.sleep(0)
        relay, fast = await join
        _, slow = await lr.join("cam-c")
        assert up.opened == 1 and lr.viewers("cam-c") == 2  # one upstream for both
        for _ in range(20):
            await up.parts.put(frame_part(JPEG))
            item = await asyncio.wait_for(fast.queue.get(), 5)
            assert item == JPEG
        assert slow.queue.qsize() == 1  # it holds the newest frame only
        await lr.leave("cam-c", relay, fast)
        assert not up.closed.is_set()
        await lr.leave("cam-c", relay, slow)
        await asyncio.wait_for(up.closed.wait(), 5)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            f"--camfleetframe\r\nContent-Type: image/jpeg\r\nContent-Length: {MAX_FRAME_BYTES + 1}"
            "\r\n\r\n".encode(),
            "broken stream: a part of 2097153 bytes is over the 2097152-byte cap",
        ),
        (b"HTTP/1.1 200 OK\r\n\r\n<html>", "broken stream: expected the boundary"),
        (final_part("the live view turned itself off: CPU at 99 %"), "CPU at 99 %"),
    ],
)
def test_the_stream_ends_with_the_reason(data: bytes, reason: str) -> None:
    async def scenario() -> None:
        up = Upstream()
        lr = relays(up)
        relay, viewer = await lr.join("cam-c")
        await up.parts.put(frame_part(JPEG))
        assert await asyncio.wait_for(viewer.queue.get(), 5) == JPEG
        await up.parts.put(data)
        end = await asyncio.wait_for(viewer.queue.get(), 5)
        assert isinstance(end, Ended) and reason in end.reason
        await lr.leave("cam-c", relay, viewer)

    asyncio.run(scenario())


def test_the_nodes_refusal_and_the_viewer_cap_pass_on() -> None:
    async def scenario() -> None:
        busy = Upstream(503, b'{"detail": "the live view turned itself off: CPU at 99 %"}')
        with pytest.raises(NodeRefused, match="CPU at 99 %") as err:
            await relays(busy).join("cam-c")
        assert err.value.status_code == 503
        up = Upstream()
        lr = relays(up, max_viewers=1)
        relay, viewer = await lr.join("cam-c")
        with pytest.raises(ViewersFull, match="liveview_max_viewers"):
            await lr.join("cam-c")
        await lr.leave("cam-c", relay, viewer)

    asyncio.run(scenario())
