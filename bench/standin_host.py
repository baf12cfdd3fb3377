"""Many lightweight stand-in agents in one process: ``python -m bench.standin_host ...``.

A real hosted agent app costs tens of MB and arms a real encoder on every start, so
1000 of them do not fit a small machine next to other work. A stand-in is a small
keep-alive HTTP/1.1 server (an ``asyncio.Protocol``, one port each, many per process)
that checks the bearer token and answers with bodies recorded from a real agent:
``GET /health``, ``GET /api/v1/status``, ``POST /api/v1/recording/start`` and
``POST /api/v1/recording/stop``. It reads each request whole (Content-Length bodies
only, as every client in the bench sends) and never parses the JSON it is sent, so it
costs little next to the client being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

MAX_HEAD = 16 * 1024  # a request head larger than this is refused: nothing sends one
MAX_BODY = 64 * 1024


def response(status: int, reason: str, body: bytes) -> bytes:
    """A complete HTTP/1.1 response with a JSON body and Content-Length."""
    head = (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class Routes:
    """The canned answers every stand-in of this process gives."""

    def __init__(self, token: str, bodies: dict[str, bytes]) -> None:
        self.token = token.encode("latin-1")
        self.table = {
            (b"GET", b"/health"): response(200, "OK", b'{"status":"ok"}'),
            (b"GET", b"/api/v1/status"): response(200, "OK", bodies["status"]),
            (b"POST", b"/api/v1/recording/start"): response(200, "OK", bodies["start"]),
            (b"POST", b"/api/v1/recording/stop"): response(200, "OK", bodies["stop"]),
        }
        self.unauthorized = response(401, "Unauthorized", b'{"detail":"bad token"}')
        self.not_found = response(404, "Not Found", b'{"detail":"no such route"}')
        self.bad = response(400, "Bad Request", b'{"detail":"bad request"}')

    def answer(self, method: bytes, path: bytes, authorization: bytes | None) -> bytes:
        """The bytes to send for one request."""
        if path == b"/health":
            return self.table[(b"GET", b"/health")]
        scheme, _, credential = (authorization or b"").strip().partition(b" ")
        if scheme.lower() != b"bearer" or credential.strip() != self.token:
            return self.unauthorized
        return self.table.get((method, path.split(b"?", 1)[0]), self.not_found)


class StandIn(asyncio.Protocol):
    """One connection to one stand-in agent: requests in, canned answers out, in order."""

    def __init__(self, routes: Routes) -> None:
        self.routes = routes
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Bounded: each pass consumes one whole request or stops.
        for _ in range(1000):
            if not self._one():
                break

    def _one(self) -> bool:
        """Answer the first whole request in the buffer; False when none is whole yet."""
        assert self.transport is not None
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._fail()
            return False
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3:
            self._fail()
            return False
        length = 0
        authorization = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"authorization":
                authorization = value
            elif name == b"transfer-encoding":
                self._fail()
                return False
        if length > MAX_BODY:
            self._fail()
            return False
        total = end + 4 + length
        if len(self.buffer) < total:
            return False
        del self.buffer[:total]
        self.transport.write(self.routes.answer(parts[0], parts[1], authorization))
        return True

    def _fail(self) -> None:
        assert self.transport is not None
        self.transport.write(self.routes.bad)
        self.transport.close()


async def serve(base_port: int, count: int, routes: Routes) -> None:
    """Listen on ports base_port .. base_port+count-1 until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = [
        await loop.create_server(
            lambda: StandIn(routes), "127.0.0.1", base_port + i, backlog=1024, reuse_address=True
        )
        for i in range(count)
    ]
    print(f"standin_host: {count} stand-ins on {base_port}-{base_port + count - 1}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.standin_host", description=__doc__)
    parser.add_argument("--count", type=int, required=True, help="how many stand-ins")
    parser.add_argument("--base-port", type=int, required=True, help="stand-in i listens on P+i")
    parser.add_argument("--token", required=True, help="bearer token every stand-in checks")
    parser.add_argument(
        "--bodies", type=Path, required=True, help="JSON file: status, start, stop answer bodies"
    )
    args = parser.parse_args(argv)
    recorded = json.loads(args.bodies.read_text())
    bodies = {key: json.dumps(recorded[key], separators=(",", ":")).encode() for key in recorded}
    asyncio.run(serve(args.base_port, args.count, Routes(args.token, bodies)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
