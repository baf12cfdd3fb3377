"""The one typed client for the agent API; it returns a result per node, never raises per node.

Bodies are the agent's own pydantic models (``node_agent.schemas``), so a change in
the contract is a type error here, not a surprise in the field.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app.fleet.http1 import HttpError, HttpPool, HttpResponse
from app.fleet.wire import (
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
    TimelapseStartRequest,
    TimelapseStatus,
)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


@dataclass(frozen=True)
class NodeAddress:
    """Where and how to reach one agent."""

    node_id: str
    host: str
    port: int
    api_token: str


@dataclass
class NodeCall(Generic[T]):
    """The outcome of one call to one node."""

    node_id: str
    ok: bool
    latency_ms: float
    status_code: int | None = None
    error: str | None = None
    value: T | None = None

    @property
    def unreachable(self) -> bool:
        """True when no HTTP answer came back (refused, reset, timed out)."""
        return self.status_code is None


class AgentClient:
    """Calls agents over keep-alive HTTP/1.1 with a deadline per call."""

    def __init__(
        self,
        timeout_s: float = 2.0,
        on_latency: Callable[[str, float], None] | None = None,
    ) -> None:
        self.timeout_s = timeout_s
        self.pool = HttpPool()
        self.on_latency = on_latency

    async def _exchange(
        self,
        node: NodeAddress,
        command: str,
        method: str,
        path: str,
        body: BaseModel | None,
        timeout_s: float | None,
        accept: str = "application/json",
    ) -> tuple[float, HttpResponse | NodeCall[Any]]:
        """Send one request: the response, or the failed NodeCall to return instead."""
        headers = {"Authorization": f"Bearer {node.api_token}", "Accept": accept}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = body.model_dump_json().encode()
        deadline = timeout_s or self.timeout_s
        t0 = time.perf_counter()
        try:
            resp = await self.pool.request(
                node.host, node.port, method, path, headers, payload, timeout_s=deadline
            )
        except TimeoutError:
            return t0, self._done(
                node, command, t0, error=f"unreachable: no answer within {deadline:g} s"
            )
        except (HttpError, OSError) as err:
            return t0, self._done(node, command, t0, error=f"unreachable: {err}")
        if resp.status >= 400:
            return t0, self._done(
                node, command, t0, status_code=resp.status, error=_error_detail(resp.body)
            )
        return t0, resp

    async def _call(
        self,
        node: NodeAddress,
        command: str,
        method: str,
        path: str,
        model: type[M],
        body: BaseModel | None = None,
        timeout_s: float | None = None,
    ) -> NodeCall[M]:
        t0, resp = await self._exchange(node, command, method, path, body, timeout_s)
        if isinstance(resp, NodeCall):
            return resp
        try:
            value = model.model_validate_json(resp.body)
        except ValidationError as err:
            return self._done(
                node,
                command,
                t0,
                status_code=resp.status,
                error=f"the agent answered something unexpected: {err.error_count()} problems",
            )
        return self._done(node, command, t0, status_code=resp.status, value=value)

    def _done(
        self,
        node: NodeAddress,
        command: str,
        t0: float,
        status_code: int | None = None,
        error: str | None = None,
        value: T | None = None,
    ) -> NodeCall[T]:
        latency_ms = (time.perf_counter() - t0) * 1000
        if self.on_latency is not None and status_code is not None:
            self.on_latency(command, latency_ms / 1000)
        return NodeCall(
            node_id=node.node_id,
            ok=error is None,
            latency_ms=round(latency_ms, 3),
            status_code=status_code,
            error=error,
            value=value,
        )

    async def start(self, node: NodeAddress, req: StartRequest) -> NodeCall[StartResult]:
        """Arm a recording on one node."""
        return await self._call(node, "start", "POST", "/api/v1/recording/start", StartResult, req)

    async def stop(
        self, node: NodeAddress, req: StopRequest, timeout_s: float | None = None
    ) -> NodeCall[StopResult]:
        """Stop a recording on one node and get its manifest."""
        return await self._call(
            node, "stop", "POST", "/api/v1/recording/stop", StopResult, req, timeout_s
        )

    async def status(self, node: NodeAddress) -> NodeCall[NodeStatus]:
        """One node's status."""
        return await self._call(node, "status", "GET", "/api/v1/status", NodeStatus)

    async def recordings(self, node: NodeAddress) -> NodeCall[RecordingList]:
        """One node's recordings with manifests."""
        return await self._call(node, "recordings", "GET", "/api/v1/recordings", RecordingList)

    async def selftest(
        self, node: NodeAddress, req: SelfTestRequest, timeout_s: float
    ) -> NodeCall[SelfTestResult]:
        """Run a self-test clip on one node (it takes ``req.duration_s`` and then some)."""
        return await self._call(
            node, "selftest", "POST", "/api/v1/selftest", SelfTestResult, req, timeout_s
        )

    async def lockview(self, node: NodeAddress, req: LockViewRequest) -> NodeCall[LockViewResult]:
        """Save a session's framing still on one node."""
        return await self._call(
            node, "lockview", "POST", "/api/v1/lockview", LockViewResult, req, 10.0
        )

    async def preview(self, node: NodeAddress) -> NodeCall[bytes]:
        """A recent JPEG from one node."""
        t0, resp = await self._exchange(
            node, "preview", "GET", "/api/v1/preview.jpg", None, 10.0, "image/jpeg"
        )
        if isinstance(resp, NodeCall):
            return resp
        return self._done(node, "preview", t0, status_code=resp.status, value=resp.body)

    @staticmethod
    async def fan_out(
        nodes: Iterable[NodeAddress], call: Callable[[NodeAddress], Awaitable[NodeCall[T]]]
    ) -> list[NodeCall[T]]:
        """Run ``call`` on every node at once; one result per node, in the given order."""
        return list(await asyncio.gather(*(call(n) for n in nodes)))

    async def aclose(self) -> None:
        """Close idle connections."""
        await self.pool.aclose()

    async def timelapse_start(
        self, node: NodeAddress, req: TimelapseStartRequest
    ) -> NodeCall[TimelapseStatus]:
        """Start the timelapse on one node."""
        return await self._call(
            node, "timelapse_start", "POST", "/api/v1/timelapse/start", TimelapseStatus, req
        )

    async def timelapse_stop(
        self, node: NodeAddress, timeout_s: float | None = None
    ) -> NodeCall[TimelapseStatus]:
        """Stop the timelapse on one node (it finishes the still under way first)."""
        return await self._call(
            node,
            "timelapse_stop",
            "POST",
            "/api/v1/timelapse/stop",
            TimelapseStatus,
            timeout_s=timeout_s,
        )

    async def timelapse_status(self, node: NodeAddress) -> NodeCall[TimelapseStatus]:
        """One node's timelapse state and counters."""
        return await self._call(
            node, "timelapse_status", "GET", "/api/v1/timelapse", TimelapseStatus
        )


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace") or "empty error body"
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    return json.dumps(data)[:200]
