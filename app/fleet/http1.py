"""A small HTTP/1.1 client on asyncio streams, with keep-alive connections per node.

Why not httpx here: fanning one command out to hundreds of nodes, one shared
``httpx.AsyncClient`` rescans its whole pool on every request (seconds at 200 nodes)
and one client per node still costs about 20x raw streams. This client speaks just
what the agent's uvicorn speaks (Content-Length or chunked bodies, keep-alive) and
keeps a few idle connections per node, so a fan-out costs about what the network does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass

_MAX_IDLE_PER_HOST = 4
_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024


class HttpError(Exception):
    """The request could not be completed (connect, send, receive or parse)."""


@dataclass
class HttpResponse:
    """A complete response."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


async def _read_response(
    reader: asyncio.StreamReader, head_only: bool
) -> tuple[HttpResponse, bool]:
    """Read one response; returns it and whether the connection may be reused."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        raise HttpError("connection closed before a response") from err
    except asyncio.LimitOverrunError as err:
        raise HttpError("response headers too large") from err
    if len(raw) > _MAX_HEADER_BYTES:
        raise HttpError("response headers too large")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    try:
        status = int(parts[1])
    except ValueError as err:
        raise HttpError(f"bad status line {lines[0][:80]!r}") from err
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    reusable = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
    if head_only or status in (204, 304) or 100 <= status < 200:
        return HttpResponse(status, headers, b""), reusable
    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length > _MAX_BODY_BYTES:
                raise HttpError(f"response body of {length} bytes is too large")
            body = await reader.readexactly(length)
        else:
            body = await reader.read(_MAX_BODY_BYTES)
            reusable = False
    except asyncio.IncompleteReadError as err:
        raise HttpError("connection closed in the middle of the body") from err
    except ValueError as err:
        raise HttpError(f"bad framing: {err}") from err
    return HttpResponse(status, headers, body), reusable


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            # trailers, if any, end with an empty line
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)
        if len(out) > _MAX_BODY_BYTES:
            raise HttpError("chunked body too large")


class HttpPool:
    """Keep-alive connections to many hosts; every request has its own deadline."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], list[_Conn]] = defaultdict(list)
        self._closed = False

    async def request(
        self,
        host: str,
        port: int,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout_s: float = 5.0,
    ) -> HttpResponse:
        """Send one request and read the whole response within ``timeout_s``."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        for name, value in (headers or {}).items():
            head.append(f"{name}: {value}")
        if body is not None:
            head.append(f"Content-Length: {len(body)}")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b"")
        key = (host, port)
        async with asyncio.timeout(timeout_s):
            # A pooled connection may have been closed by the server while idle; one
            # fresh retry covers that (agent commands are idempotent by command_id).
            while self._idle[key]:
                conn = self._idle[key].pop()
                try:
                    return await self._exchange(key, conn, payload, method == "HEAD")
                except (HttpError, OSError):
                    conn.close()
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError as err:
                raise HttpError(f"cannot connect to {host}:{port}: {err.strerror or err}") from err
            return await self._exchange(key, _Conn(reader, writer), payload, method == "HEAD")

    async def _exchange(
        self, key: tuple[str, int], conn: _Conn, payload: bytes, head_only: bool
    ) -> HttpResponse:
        try:
            conn.writer.write(payload)
            await conn.writer.drain()
            resp, reusable = await _read_response(conn.reader, head_only)
        except BaseException:
            conn.close()
            raise
        if reusable and not self._closed and len(self._idle[key]) < _MAX_IDLE_PER_HOST:
            self._idle[key].append(conn)
        else:
            conn.close()
        return resp

    def forget(self, host: str, port: int) -> None:
        """Drop idle connections to one host (it moved or went away)."""
        for conn in self._idle.pop((host, port), []):
            conn.close()

    async def aclose(self) -> None:
        """Close every idle connection."""
        self._closed = True
        conns = [c for idle in self._idle.values() for c in idle]
        self._idle.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.writer.wait_closed()
