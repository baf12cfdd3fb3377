"""A hostile stand-in node for the watch tests: it joins the coordinator for real (its own
key, a real signed join) and answers status calls with a valid status, but its status
stream misbehaves in one chosen way. It runs its own event loop in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from common.identity import load_or_create_key, public_key_text
from node_agent.link import CoordinatorLink
from node_agent.schemas import JoinRequest, Position, RecorderState

# How each stand-in's stream misbehaves.
MODES = ("endless_line", "huge_event", "silent", "flood", "dead")


@dataclass
class StandIn:
    """One misbehaving node: ``mode`` says how its stream breaks the rules."""

    mode: str
    node_id: str
    status: dict[str, Any]  # a real agent's status, renamed to this node
    coordinator_url: str
    fleet_token: str
    key_path: Any
    port: int = 0
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    streams_opened: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.Server | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> StandIn:
        threading.Thread(target=self._thread, daemon=True).start()
        assert self._ready.wait(10), "the stand-in did not start"
        return self

    def stop(self) -> None:
        """Close the server and every connection, then end the thread's loop."""
        loop = self._loop
        if loop is None or self._server is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _thread(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._loop.run_forever()
        self._loop.close()

    async def _serve(self) -> None:
        server = self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        key = load_or_create_key(self.key_path)
        request = JoinRequest(
            node_id=self.node_id,
            cam_id=self.node_id.upper().replace("-", "_"),
            position=Position.other,
            port=self.port,
            api_token=self.api_token,
            public_key=public_key_text(key),
            version="0.0-standin",
            hostname="standin",
            recorder_state=RecorderState.idle,
            session_id=None,
        )
        link = CoordinatorLink(self.coordinator_url, self.fleet_token, lambda: request, 5, 1, key)
        async with httpx.AsyncClient(timeout=5) as client:
            await link.beat(client)
        self._ready.set()

    def _status_body(self) -> bytes:
        return json.dumps(self.status | {"time_ns": time.time_ns()}).encode()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            if path == "/api/v1/status/stream":
                self.streams_opened += 1
                await self._stream(writer)
            elif path == "/api/v1/status":
                if self.mode == "dead":
                    await asyncio.sleep(3600)  # a node that hangs every call
                body = self._status_body()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        if self.mode == "dead":
            await asyncio.sleep(3600)  # not even the answer's head
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        await writer.drain()
        if self.mode == "silent":
            await asyncio.sleep(3600)
        elif self.mode == "endless_line":
            writer.write(b"data: ")
            with contextlib.suppress(OSError):
                while True:  # one line that never ends
                    writer.write(b"x" * 16384)
                    await writer.drain()
                    await asyncio.sleep(0.001)
        elif self.mode == "huge_event":
            with contextlib.suppress(OSError):
                while True:  # one event of ever more data lines
                    writer.write(b"data: " + b"y" * 1000 + b"\n")
                    await writer.drain()
                    await asyncio.sleep(0.0005)
        elif self.mode == "flood":
            with contextlib.suppress(OSError):
                while True:  # valid status events, far too many
                    writer.write(b"event: status\ndata: " + self._status_body() + b"\n\n")
                    await writer.drain()
                    await asyncio.sleep(0.001)
