"""``GET /api/v1/status/stream``: this node's status pushed as server-sent events.

On connect a client gets the full status at once, then a new status whenever it changes
(at most one every ``debounce_s``), and a ``: hb`` comment every ``heartbeat_s`` so the
coordinator can tell a dead link from a quiet node.

How a change is noticed, cheaply: one producer task runs only while a client is
connected. It wakes when poked (the ``PokeOnWrite`` middleware pokes after every
state-changing request: a start, a stop, a timelapse, a config change; the recorder
pokes at its first frame and when it ends) and every
``check_s`` on its own, reads the status from the parts' caches (no hardware call) and
compares a digest of it without the fields that move on every read (``time_ns``,
``uptime_s``). That periodic compare catches what a node does by itself: a recording
beginning at its start instant or ending for a full disk, the timelapse's stills, the
disk filling, the battery draining.

Bounded: at most ``max_clients`` streams; a new one ends the oldest (a link that died
without a FIN stays open on this side for minutes, and must not lock the coordinator out).
Each client holds only the latest unsent status, never a queue; one whose socket does
not take an event within ``send_timeout_s`` is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from node_agent.schemas import NodeStatus

log = logging.getLogger(__name__)

HEARTBEAT = b": hb\n\n"
_VOLATILE = ("time_ns", "uptime_s")
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})


# Values that drift a little all the time are compared coarsely: free space in steps of
# 16 MiB (other programs write to the same disk), minutes left in whole minutes, ages
# (derived from a reading's time) not at all. A real change (a disk level, an alarm, a
# counter) is exact and makes an event; the event then carries the exact values.
_COARSE: dict[str, Callable[[Any], Any]] = {
    "free_bytes": lambda v: v // (16 * 1024 * 1024) if isinstance(v, int) else v,
    "minutes_left": lambda v: round(v) if isinstance(v, float) else v,
    "free_percent": lambda v: round(v) if isinstance(v, float) else v,
}


def _coarse(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _COARSE[k](v) if k in _COARSE else _coarse(v)
            for k, v in value.items()
            if not k.endswith("age_s")
        }
    if isinstance(value, list):
        return [_coarse(v) for v in value]
    return value


def digest(status: NodeStatus) -> str:
    """A status's fingerprint without the fields that change on every read."""
    data = _coarse(status.model_dump(mode="json", exclude=set(_VOLATILE)))
    return hashlib.blake2b(json.dumps(data, sort_keys=True).encode(), digest_size=16).hexdigest()


def encode(status: NodeStatus, seq: int) -> bytes:
    """One ``status`` event in the text/event-stream framing."""
    return f"id: {seq}\nevent: status\ndata: {status.model_dump_json()}\n\n".encode()


@dataclass(eq=False)
class StreamClient:
    """One connected reader: the latest status not yet sent, and whether it must end."""

    pending: bytes | None = None
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None  # why the stream ends, once it must

    def offer(self, event: bytes) -> None:
        """The newest status replaces any unsent one (a reader needs only the latest)."""
        self.pending = event
        self.ready.set()

    def end(self, reason: str) -> None:
        """Ask the stream to finish."""
        if self.ended is None:
            self.ended = reason
        self.ready.set()

    async def next(self, timeout_s: float) -> bytes | None:
        """The next event, None when ``timeout_s`` passed without one (time to heartbeat)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout_s)
        self.ready.clear()
        event, self.pending = self.pending, None
        return event


class StatusStream:
    """The producer and the clients of the status stream."""

    def __init__(
        self,
        status: Callable[[], NodeStatus],
        *,
        heartbeat_s: float = 1.0,
        debounce_s: float = 0.2,
        check_s: float = 0.5,
        max_clients: int = 2,
        send_timeout_s: float = 2.0,
    ) -> None:
        self.status = status
        self.heartbeat_s = heartbeat_s
        self.debounce_s = debounce_s
        self.check_s = check_s
        self.max_clients = max_clients
        self.send_timeout_s = send_timeout_s
        self.clients: list[StreamClient] = []
        self.seq = 0
        self.dropped_slow = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_digest: str | None = None
        self._closed = False

    def poke(self) -> None:
        """Something may have changed: look now (safe from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def first_event(self) -> tuple[bytes, str]:
        """The current status for a client that just connected, and its digest."""
        status = self.status()
        self.seq += 1
        return encode(status, self.seq), digest(status)

    @property
    def closed(self) -> bool:
        """True once the server began to shut down."""
        return self._closed

    def attach(self) -> StreamClient:
        """A new client; the oldest is ended when there are ``max_clients`` already."""
        self._loop = asyncio.get_running_loop()
        while len(self.clients) >= self.max_clients:
            oldest = self.clients.pop(0)
            oldest.end(f"replaced by a newer client (at most {self.max_clients})")
            log.info("status stream: oldest client ended, at most %d", self.max_clients)
        client = StreamClient()
        self.clients.append(client)
        if self._task is None or self._task.done():
            self._last_digest = None
            self._task = asyncio.create_task(self._produce(), name="status-stream")
        return client

    def detach(self, client: StreamClient) -> None:
        """A client went away."""
        with contextlib.suppress(ValueError):
            self.clients.remove(client)
        if not self.clients:
            self._wake.set()  # the producer sees nobody is left and ends

    def close(self) -> None:
        """End every stream (the server is shutting down)."""
        self._closed = True
        for client in list(self.clients):
            client.end("the agent is shutting down")
        self.clients.clear()
        self._wake.set()

    async def _produce(self) -> None:
        last_sent = 0.0
        while self.clients and not self._closed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.check_s)
            self._wake.clear()
            wait = last_sent + self.debounce_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # changes in this window make one event
            if not self.clients:
                return
            try:
                status = self.status()
                now_digest = digest(status)
            except Exception:  # one bad read must not end the stream for good
                log.exception("status stream: reading the status failed")
                continue
            if now_digest == self._last_digest:
                continue
            self._last_digest = now_digest
            self.seq += 1
            event = encode(status, self.seq)
            for client in list(self.clients):
                client.offer(event)
            last_sent = time.monotonic()

    def note_first(self, first_digest: str) -> None:
        """A client was sent this status on connect; the producer need not repeat it."""
        if self._last_digest is None:
            self._last_digest = first_digest


class StatusStreamResponse(Response):
    """The ASGI answer of one stream: it times every send, so a reader that stopped
    reading is dropped instead of holding the producer or memory."""

    def __init__(self, stream: StatusStream) -> None:
        super().__init__(media_type="text/event-stream")
        self.stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.stream
        if stream.closed:  # shutting down: a stream now would hold the exit for good
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
                }
            )
            body = b'{"detail":"the agent is shutting down","code":"unavailable"}'
            await send({"type": "http.response.body", "body": body})
            return
        first, first_digest = stream.first_event()
        client = stream.attach()
        stream.note_first(first_digest)

        async def watch_disconnect() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    client.end("the client went away")
                    return

        watcher = asyncio.create_task(watch_disconnect(), name="status-stream-disconnect")

        async def put(body: bytes, more: bool = True) -> None:
            message = {"type": "http.response.body", "body": body, "more_body": more}
            await asyncio.wait_for(send(message), stream.send_timeout_s)

        try:
            await asyncio.wait_for(
                send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"text/event-stream; charset=utf-8"),
                            (b"cache-control", b"no-store"),
                            (b"x-accel-buffering", b"no"),
                            # never reused: a stream's connection ends with it
                            (b"connection", b"close"),
                        ],
                    }
                ),
                stream.send_timeout_s,
            )
            await put(first)
            while client.ended is None:
                event = await client.next(stream.heartbeat_s)
                if client.ended is not None:
                    break
                await put(event if event is not None else HEARTBEAT)
            if client.ended != "the client went away":
                await put(b"", more=False)
        except TimeoutError:
            stream.dropped_slow += 1
            log.warning(
                "status stream: a client took over %g s to take an event; dropped",
                stream.send_timeout_s,
            )
        except OSError:
            pass  # the connection is gone
        finally:
            watcher.cancel()
            stream.detach(client)


class PokeOnWrite:
    """ASGI middleware: after every state-changing request, poke the status stream."""

    def __init__(self, app: ASGIApp, poke: Callable[[], None]) -> None:
        self.app = app
        self.poke = poke

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _READ_ONLY:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.poke()
