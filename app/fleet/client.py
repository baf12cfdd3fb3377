"""The one typed client for the agent API: every call returns a result, never raises.

Bodies are the agent's own pydantic models (``app.fleet.wire``), so a change in the
contract is a type error here, not a surprise in the field. Every answer has a size cap
by call type and a deadline; anything that goes wrong (refused, reset, timed out, over
the cap, malformed, not the model) becomes that call's ``NodeCall`` with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from app.fleet.transport import (
    AiohttpTransport,
    HttpResponse,
    StreamAnswer,
    Transport,
    TransportError,
)
from app.fleet.wire import (
    AudioToggle,
    AudioToggleResult,
    BeepRequest,
    BeepResult,
    ConfigDocument,
    ConfigResult,
    ConfigUpdate,
    ConfirmRequest,
    ConfirmResult,
    DeleteResult,
    LockViewRequest,
    LockViewResult,
    NodeStatus,
    RecordingList,
    SelfTestRequest,
    SelfTestResult,
    ShutdownAnswer,
    StartRequest,
    StartResult,
    StopRequest,
    StopResult,
    TimelapseStartRequest,
    TimelapseStatus,
    UpdateApplyRequest,
    UpdateCheck,
    UpdateProgress,
)
from common.logmodes import Level, LogList, ModeChange, ModeState

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

KIB = 1024
MIB = 1024 * KIB

# The largest answer each call may bring back. A status is a few KiB; a manifest list
# grows with the recordings on the node (about 1.5 KiB each); a still is a JPEG.
MAX_ANSWER_BYTES: dict[str, int] = {
    "status": 256 * KIB,
    "start": 64 * KIB,
    "beep": 16 * KIB,
    "audio": 16 * KIB,
    "stop": 256 * KIB,
    "recordings": 16 * MIB,
    "selftest": 256 * KIB,
    "lockview": 64 * KIB,
    "preview": 8 * MIB,
    "timelapse_start": 256 * KIB,
    "timelapse_stop": 256 * KIB,
    "timelapse_status": 256 * KIB,
    "confirm": 256 * KIB,
    # one line per file deleted: even a node with 100,000 recordings answers within it
    "delete_offloaded": 32 * MIB,
    "lockview_file": 16 * MIB,
    "config_get": 256 * KIB,
    "config_put": 256 * KIB,
    "shutdown": 64 * KIB,
    "mode": 16 * KIB,
    # up to 5000 records of a few hundred bytes
    "logs": 8 * MIB,
    # release notes are capped by the agent; the history by keep_versions and its length
    "update_check": 256 * KIB,
    "update_apply": 256 * KIB,
    "update_status": 256 * KIB,
    "error_body": 64 * KIB,
}


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
    error_items: list[dict[str, Any]] | None = None  # a 422's per-field problems

    @property
    def unreachable(self) -> bool:
        """True when no HTTP answer came back (refused, reset, timed out, malformed)."""
        return self.status_code is None


class AgentClient:
    """Typed calls to agents over an injectable transport, a deadline on each."""

    def __init__(self, timeout_s: float = 2.0, transport: Transport | None = None) -> None:
        self.timeout_s = timeout_s
        self.transport: Transport = transport or AiohttpTransport()

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
        """Send one request: the answer, or the failed NodeCall to return instead."""
        headers = {"Authorization": f"Bearer {node.api_token}", "Accept": accept}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = body.model_dump_json().encode()
        deadline = timeout_s or self.timeout_s
        t0 = time.perf_counter()
        try:
            resp = await self.transport.request(
                node.host,
                node.port,
                method,
                path,
                headers,
                payload,
                timeout_s=deadline,
                max_bytes=MAX_ANSWER_BYTES[command],
            )
        except TimeoutError:
            return t0, _failed(node, t0, f"unreachable: no answer within {deadline:g} s")
        except TransportError as err:
            return t0, _failed(node, t0, f"unreachable: {err}")
        except asyncio.CancelledError:
            raise
        except Exception as err:  # any other failure is this node's, never the fan-out's
            return t0, _failed(node, t0, f"unreachable: {type(err).__name__}: {err}"[:300])
        if resp.status >= 400:
            failed = _failed(node, t0, _error_detail(resp.body), resp.status)
            failed.error_items = _error_items(resp.body)
            return t0, failed
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
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(body)"
            return _failed(
                node,
                t0,
                f"the agent answered something unexpected: {err.error_count()} problems, "
                f"first at {where}: {first['msg']}"[:300],
                resp.status,
            )
        return _done(node, t0, resp.status, value)

    async def start(self, node: NodeAddress, req: StartRequest) -> NodeCall[StartResult]:
        """Arm a recording on one node."""
        return await self._call(node, "start", "POST", "/api/v1/recording/start", StartResult, req)

    async def beep(self, node: NodeAddress, req: BeepRequest) -> NodeCall[BeepResult]:
        """Schedule the start tone on one node (it answers at once)."""
        return await self._call(node, "beep", "POST", "/api/v1/recording/beep", BeepResult, req)

    async def set_audio(self, node: NodeAddress, req: AudioToggle) -> NodeCall[AudioToggleResult]:
        """Turn one node's audio track (camera.audio) on or off."""
        return await self._call(node, "audio", "PUT", "/api/v1/audio", AudioToggleResult, req)

    async def set_mode(self, node: NodeAddress, req: ModeChange) -> NodeCall[ModeState]:
        """Switch one node between production and development mode."""
        return await self._call(node, "mode", "PUT", "/api/v1/mode", ModeState, req)

    async def logs(self, node: NodeAddress, lines: int, level: Level) -> NodeCall[LogList]:
        """One node's recent log records (its ring)."""
        path = f"/api/v1/logs?lines={lines}&level={level}"
        return await self._call(node, "logs", "GET", path, LogList)

    async def stop(
        self, node: NodeAddress, req: StopRequest, timeout_s: float | None = None
    ) -> NodeCall[StopResult]:
        """Stop a recording on one node and get its manifest."""
        return await self._call(
            node, "stop", "POST", "/api/v1/recording/stop", StopResult, req, timeout_s
        )

    async def status(
        self, node: NodeAddress, timeout_s: float | None = None
    ) -> NodeCall[NodeStatus]:
        """One node's status."""
        return await self._call(
            node, "status", "GET", "/api/v1/status", NodeStatus, timeout_s=timeout_s
        )

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
        if not resp.body.startswith(b"\xff\xd8"):
            return _failed(node, t0, "the agent's preview is not a JPEG", resp.status)
        return _done(node, t0, resp.status, resp.body)

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

    async def confirm(
        self, node: NodeAddress, name: str, req: ConfirmRequest
    ) -> NodeCall[ConfirmResult]:
        """Tell a node a verified copy of ``name`` exists: it marks the recording offloaded."""
        path = f"/api/v1/recordings/{quote(name, safe='')}/confirm"
        return await self._call(node, "confirm", "POST", path, ConfirmResult, req, 10.0)

    async def delete_offloaded(
        self, node: NodeAddress, timeout_s: float = 60.0
    ) -> NodeCall[DeleteResult]:
        """Have a node delete every recording it has confirmed copies of."""
        return await self._call(
            node,
            "delete_offloaded",
            "DELETE",
            "/api/v1/recordings?offloaded=true",
            DeleteResult,
            timeout_s=timeout_s,
        )

    async def lockview_file(self, node: NodeAddress, name: str) -> NodeCall[bytes]:
        """A recording's Lock View still (a small JPEG, read whole)."""
        t0, resp = await self._exchange(
            node,
            "lockview_file",
            "GET",
            f"/api/v1/recordings/{quote(name, safe='')}",
            None,
            10.0,
            "image/jpeg",
        )
        if isinstance(resp, NodeCall):
            return resp
        if not resp.body.startswith(b"\xff\xd8"):
            return _failed(node, t0, f"the agent's {name} is not a JPEG", resp.status)
        return _done(node, t0, resp.status, resp.body)

    @contextlib.asynccontextmanager
    async def download(
        self,
        node: NodeAddress,
        name: str,
        *,
        range_header: str | None,
        max_bytes: int,
        idle_timeout_s: float,
    ) -> AsyncIterator[NodeCall[StreamAnswer]]:
        """Open a download of ``name`` (with ``Range`` when given): a NodeCall whose value's
        ``chunks()`` yields the body, at most ``max_bytes`` of it, each piece within
        ``idle_timeout_s`` (else TransportError from the iteration). An error answer, or no
        answer, is a failed NodeCall, as for every other call."""
        headers = {"Authorization": f"Bearer {node.api_token}", "Accept": "*/*"}
        if range_header is not None:
            headers["Range"] = range_header
        path = f"/api/v1/recordings/{quote(name, safe='')}"
        t0 = time.perf_counter()
        async with contextlib.AsyncExitStack() as stack:
            failure: str | None = None
            try:
                answer = await stack.enter_async_context(
                    self.transport.stream(
                        node.host,
                        node.port,
                        "GET",
                        path,
                        headers,
                        idle_timeout_s=idle_timeout_s,
                        max_bytes=max_bytes,
                    )
                )
            except TransportError as err:
                failure = f"unreachable: {err}"
            except TimeoutError:
                failure = f"unreachable: no answer within {idle_timeout_s:g} s"
            except OSError as err:
                failure = f"unreachable: {type(err).__name__}: {err}"[:300]
            if failure is not None:
                yield _failed(node, t0, failure)
                return
            if answer.status >= 400:
                body = bytearray()
                with contextlib.suppress(TransportError):
                    async for chunk in answer.chunks():
                        body += chunk
                        if len(body) > MAX_ANSWER_BYTES["error_body"]:
                            break
                yield _failed(node, t0, _error_detail(bytes(body)), answer.status)
                return
            yield _done(node, t0, answer.status, answer)

    @staticmethod
    async def fan_out(
        nodes: Iterable[NodeAddress], call: Callable[[NodeAddress], Awaitable[NodeCall[T]]]
    ) -> list[NodeCall[T]]:
        """Run ``call`` on every node at once, with no per-node bookkeeping: for tools and
        benchmarks. The coordinator's services go through ``app.fleet.fanout.Fanout``."""
        return list(await asyncio.gather(*(call(n) for n in nodes)))

    async def config_get(self, node: NodeAddress) -> NodeCall[ConfigDocument]:
        """The node's settings file, secrets masked."""
        return await self._call(node, "config_get", "GET", "/api/v1/config", ConfigDocument)

    async def config_put(self, node: NodeAddress, req: ConfigUpdate) -> NodeCall[ConfigResult]:
        """Merge a change into the node's settings file (its 409 and 422 come back)."""
        return await self._call(node, "config_put", "PUT", "/api/v1/config", ConfigResult, req)

    async def shutdown(self, node: NodeAddress) -> NodeCall[ShutdownAnswer]:
        """Begin the node's shutdown sequence (it answers 202 with the steps)."""
        return await self._call(node, "shutdown", "POST", "/api/v1/shutdown", ShutdownAnswer)

    async def update_check(self, node: NodeAddress) -> NodeCall[UpdateCheck]:
        """What the node runs and what its feed offers (the node reads its feed)."""
        return await self._call(
            node, "update_check", "GET", "/api/v1/update/check", UpdateCheck, timeout_s=30.0
        )

    async def update_apply(
        self, node: NodeAddress, req: UpdateApplyRequest
    ) -> NodeCall[UpdateProgress]:
        """Ask the node to install a release; 202 once its update has begun."""
        return await self._call(
            node, "update_apply", "POST", "/api/v1/update/apply", UpdateProgress, req, 30.0
        )

    async def update_status(self, node: NodeAddress) -> NodeCall[UpdateProgress]:
        """The node's update under way, or its verdict."""
        return await self._call(
            node, "update_status", "GET", "/api/v1/update/status", UpdateProgress
        )

    async def aclose(self) -> None:
        """Close the transport's connections."""
        await self.transport.aclose()


def _done(node: NodeAddress, t0: float, status_code: int, value: T) -> NodeCall[T]:
    latency_ms = round((time.perf_counter() - t0) * 1000, 3)
    return NodeCall(node.node_id, True, latency_ms, status_code, None, value)


def _failed(
    node: NodeAddress, t0: float, error: str, status_code: int | None = None
) -> NodeCall[Any]:
    latency_ms = round((time.perf_counter() - t0) * 1000, 3)
    return NodeCall(node.node_id, False, latency_ms, status_code, error)


def _error_items(body: bytes) -> list[dict[str, Any]] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    items = data.get("errors") if isinstance(data, dict) else None
    if isinstance(items, list) and all(isinstance(i, dict) for i in items):
        return items[:100]
    return None


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace") or "empty error body"
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return str(data["detail"])[:500]
    return json.dumps(data)[:200]
