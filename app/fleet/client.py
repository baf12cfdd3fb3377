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
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from app.fleet.http1 import HttpError, HttpPool
from node_agent.schemas import (
    NodeStatus,
    RecordingList,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
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
        headers = {"Authorization": f"Bearer {node.api_token}", "Accept": "application/json"}
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
            return self._done(
                node, command, t0, error=f"unreachable: no answer within {deadline:g} s"
            )
        except (HttpError, OSError) as err:
            return self._done(node, command, t0, error=f"unreachable: {err}")
        if resp.status >= 400:
            return self._done(
                node, command, t0, status_code=resp.status, error=_error_detail(resp.body)
            )
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
        value: M | None = None,
    ) -> NodeCall[M]:
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

    @staticmethod
    async def fan_out(
        nodes: Iterable[NodeAddress], call: Callable[[NodeAddress], Awaitable[NodeCall[T]]]
    ) -> list[NodeCall[T]]:
        """Run ``call`` on every node at once; one result per node, in the given order."""
        return list(await asyncio.gather(*(call(n) for n in nodes)))

    async def aclose(self) -> None:
        """Close idle connections."""
        await self.pool.aclose()


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace") or "empty error body"
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])
    return json.dumps(data)[:200]
