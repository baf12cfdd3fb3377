"""A fake node agent for tests and benchmarks: a small asyncio HTTP/1.1 server in a thread of the test
process that joins the coordinator properly (its own Ed25519 key, a signed challenge) and
answers the agent API after a delay, optionally with extra fields a newer agent might send."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common import identity
from node_agent import __version__
from node_agent.schemas import (
    ClockStatus,
    Codec,
    DiskStatus,
    NodeStatus,
    Position,
    RecorderState,
    RecorderStatus,
    StartResult,
    StopResult,
)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64 + b"\xff\xd9"


@dataclass
class FakeNode:
    """Answers every call ``delay_s`` late; ``extra`` is merged into every JSON answer."""

    node_id: str = "fake-1"
    cam_id: str = "CAM_R"
    delay_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    api_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    port: int = 0
    calls: list[str] = field(default_factory=list)
    # (delay, status) for successive stop calls, on top of ``delay_s``; then 200s.
    stop_answers: list[tuple[float, int]] = field(default_factory=list)
    session_id: str | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    # --- answers ------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        rec = RecorderStatus(
            state=RecorderState.recording if self.session_id else RecorderState.idle,
            session_id=self.session_id,
            codec=Codec.h264,
            width=320,
            height=240,
            fps=30.0,
            bitrate_bps=1_000_000,
            profile="240p30 H.264",
            camera="fake",
        )
        return NodeStatus(
            node_id=self.node_id,
            cam_id=self.cam_id,
            position=Position.right,
            hostname="fake",
            version=__version__,
            time_ns=time.time_ns(),
            uptime_s=1.0,
            recorder=rec,
            clock=ClockStatus(source="none", synchronized=False),
            disk=DiskStatus(path="/", total_bytes=10**10, free_bytes=10**10, minutes_left=999.0),
            coordinator="joined",
        ).model_dump(mode="json")

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        self.calls.append(f"{method} {path}")
        req = json.loads(body) if body else {}
        out: dict[str, Any]
        if path == "/api/v1/status":
            out = self.status()
        elif path == "/api/v1/recording/start":
            self.session_id = req["session_id"]
            now = time.time_ns()
            out = StartResult(
                session_id=req["session_id"],
                command_id=req["command_id"],
                state=RecorderState.armed,
                file_name=f"{req['session_id']}_{self.cam_id}.mp4",
                start_at_ns=req.get("start_at_ns") or now,
                scheduled=True,
                armed_at_ns=now,
                profile="240p30 H.264",
            ).model_dump(mode="json")
        elif path == "/api/v1/recording/stop":
            self.session_id = None
            out = StopResult(
                session_id=req["session_id"], command_id=req["command_id"], state="stopped"
            ).model_dump(mode="json")
        elif path == "/api/v1/recordings":
            out = {"node_id": self.node_id, "recordings": []}
        elif path == "/api/v1/preview.jpg":
            return 200, "image/jpeg", JPEG
        else:
            return 404, "application/json", b'{"detail":"not here","code":"not_found"}'
        return 200, "application/json", json.dumps(out | self.extra).encode()

    # --- the server ---------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length = 0
                auth = ""
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                    elif name.lower() == "authorization":
                        auth = value.strip()
                body = await reader.readexactly(length)
                await asyncio.sleep(self.delay_s)
                failing = 200
                if path == "/api/v1/recording/stop" and self.stop_answers:
                    pause_s, failing = self.stop_answers.pop(0)
                    await asyncio.sleep(pause_s)
                if failing != 200:
                    self.calls.append(f"{method} {path}")
                    status, ctype, payload = failing, "application/json", b'{"detail":"busy"}'
                elif auth != f"Bearer {self.api_token}":
                    status, ctype, payload = 401, "application/json", b'{"detail":"no"}'
                else:
                    status, ctype, payload = self.answer(method, path.split("?")[0], body)
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    @contextlib.contextmanager
    def running(self) -> Iterator[FakeNode]:
        """Serve on a loopback port in a background thread until the block ends."""
        ready = threading.Event()
        stop: asyncio.Event | None = None

        async def main() -> None:
            nonlocal stop
            stop = asyncio.Event()
            server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self._loop = asyncio.get_running_loop()
            ready.set()
            async with server:
                await stop.wait()
                server.close()

        thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        thread.start()
        assert ready.wait(5)
        try:
            yield self
        finally:
            assert self._loop is not None and stop is not None
            self._loop.call_soon_threadsafe(stop.set)
            thread.join(10)

    # --- joining ------------------------------------------------------------------------

    def join(self, coordinator_url: str, fleet_token: str) -> httpx.Response:
        """One join the way a real agent does it: challenge, then the signed body."""
        auth = {"Authorization": f"Bearer {fleet_token}"}
        asked = httpx.post(
            f"{coordinator_url}/api/v1/nodes/challenge",
            json={"node_id": self.node_id},
            headers=auth,
            timeout=5,
        )
        asked.raise_for_status()
        nonce = asked.json()["nonce"]
        body = json.dumps(
            {
                "node_id": self.node_id,
                "cam_id": self.cam_id,
                "position": "right",
                "port": self.port,
                "api_token": self.api_token,
                "public_key": identity.public_key_text(self.key),
                "version": __version__,
                "hostname": "fake",
            }
        ).encode()
        headers = auth | {
            "Content-Type": "application/json",
            identity.NONCE_HEADER: nonce,
            identity.SIGNATURE_HEADER: identity.sign(self.key, nonce, body),
        }
        return httpx.post(
            f"{coordinator_url}/api/v1/nodes/join", content=body, headers=headers, timeout=5
        )
