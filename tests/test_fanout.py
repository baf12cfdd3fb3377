"""The fan-out's per-node gate, with a transport of the test's own in place of HTTP."""

from __future__ import annotations

import asyncio

from app.fleet.client import AgentClient, NodeAddress
from app.fleet.fanout import Fanout
from app.fleet.state import FleetState
from app.fleet.transport import HttpResponse
from app.fleet.wire import StopRequest

JPEG = b"\xff\xd8" + b"\x00" * 16
STOPPED = b'{"session_id":"S1","command_id":"c1","state":"stopped"}'


class SlowTransport:
    """Answers every request after ``delay_s``, one at a time per call, and logs the order."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.served: list[str] = []

    async def request(
        self,
        host: str,
        port: int,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes | None,
        *,
        timeout_s: float,
        max_bytes: int,
    ) -> HttpResponse:
        await asyncio.sleep(self.delay_s)
        self.served.append(path)
        if path.endswith("preview.jpg"):
            return HttpResponse(200, "image/jpeg", JPEG)
        return HttpResponse(200, "application/json", STOPPED)

    async def aclose(self) -> None:
        """Nothing to close."""


def _fanout(transport: SlowTransport, **kw: float) -> tuple[Fanout, NodeAddress]:
    node = NodeAddress("n1", "127.0.0.1", 9, "t" * 20)
    state = FleetState(offline_after_s=5)
    state.set_address(node, "CAM_C")
    fanout = Fanout(AgentClient(2.0, transport), state, **kw)  # type: ignore[arg-type]
    return fanout, node


def test_a_stop_goes_ahead_of_previews_waiting_for_a_slow_node() -> None:
    async def main() -> list[str]:
        transport = SlowTransport(0.2)
        fanout, node = _fanout(transport, slow_after_s=0.1)
        # The first quick call takes longer than slow_after_s: the node is now slow and
        # gets one call at a time.
        await fanout.call(node, "preview", fanout.client.preview)
        assert transport.served == ["/api/v1/preview.jpg"]
        previews = [
            asyncio.create_task(fanout.call(node, "preview", fanout.client.preview, 5.0))
            for _ in range(4)
        ]
        await asyncio.sleep(0.05)  # the previews are queued (one is under way)
        req = StopRequest(session_id="S1", command_id="c1")
        stop = asyncio.create_task(
            fanout.call(node, "stop", lambda a: fanout.client.stop(a, req), 5.0)
        )
        stopped = await stop
        shown = await asyncio.gather(*previews)
        assert stopped.ok and all(r.ok for r in shown), [r.error for r in shown]
        return transport.served[1:]

    order = asyncio.run(main())
    # One preview was already under way; the stop came next, before the other three.
    assert order[:2] == ["/api/v1/preview.jpg", "/api/v1/recording/stop"]
    assert order.count("/api/v1/preview.jpg") == 4


def test_a_caller_that_would_wait_past_its_deadline_fails_fast_with_the_reason() -> None:
    async def main() -> tuple[bool, str | None, float]:
        transport = SlowTransport(0.5)
        fanout, node = _fanout(transport, slow_after_s=0.1)
        await fanout.call(node, "preview", fanout.client.preview)  # marks the node slow
        first = asyncio.create_task(fanout.call(node, "preview", fanout.client.preview, 5.0))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        late = await fanout.call(node, "preview", fanout.client.preview, 0.2)
        took = loop.time() - t0
        await first
        return late.ok, late.error, took

    ok, error, took = asyncio.run(main())
    assert not ok and error is not None and "node is slow" in error
    assert took < 0.45  # it gave up at its own deadline, not after the call ahead of it


def test_the_queue_limit_refuses_at_once_but_never_a_stop() -> None:
    async def main() -> tuple[list[str | None], bool]:
        transport = SlowTransport(0.3)
        fanout, node = _fanout(transport, slow_after_s=0.1, queue_limit=2)
        await fanout.call(node, "preview", fanout.client.preview)  # slow: one at a time
        queued = [
            asyncio.create_task(fanout.call(node, "preview", fanout.client.preview, 5.0))
            for _ in range(3)  # one runs, two wait: the queue is full
        ]
        await asyncio.sleep(0.05)
        refused = await fanout.call(node, "preview", fanout.client.preview, 5.0)
        req = StopRequest(session_id="S1", command_id="c1")
        stopped = await fanout.call(node, "stop", lambda a: fanout.client.stop(a, req), 5.0)
        await asyncio.gather(*queued)
        return [refused.error], stopped.ok

    errors, stop_ok = asyncio.run(main())
    assert errors[0] is not None and "saturated" in errors[0]
    assert stop_ok
