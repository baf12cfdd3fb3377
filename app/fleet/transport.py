"""HTTP transports for calls to agents: aiohttp in production, anything with the same shape in tests.

Why aiohttp: fanning a status call out to 200 real agents (``make bench``), one shared
``aiohttp.ClientSession`` costs about 1.2x raw asyncio streams, while httpx costs about
3x with one client per node and far more with one shared client (its pool rescans every
connection per request). The hand-written HTTP/1.1 parser this replaces was fast but
broke on hostile answers (a 64 KiB chunk line, a 1 GiB chunk); aiohttp's parser bounds
lines, fields and header counts, and this module bounds every body it reads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
import yarl

# Header limits: an agent's answer has a handful of short headers.
MAX_LINE_BYTES = 8 * 1024
MAX_FIELD_BYTES = 8 * 1024
MAX_HEADERS = 64
_READ_CHUNK = 64 * 1024
# Idle keep-alive of the client's connections to agents (aiohttp's default).
CLIENT_KEEP_ALIVE_S = 15.0
# Answer headers a stream passes on to its reader (everything else is dropped).
STREAM_HEADERS = ("content-range", "accept-ranges", "content-length")


class TransportError(Exception):
    """The exchange failed: connect, send, receive, framing, or an answer over its size cap."""


@dataclass(frozen=True)
class HttpResponse:
    """A complete answer, its body already bounded."""

    status: int
    content_type: str
    body: bytes


@dataclass
class StreamAnswer:
    """An answer whose body is read as it arrives: at most ``max_bytes`` of it, each piece
    within the idle deadline, else ``body`` raises TransportError."""

    status: int
    content_type: str
    content_length: int | None
    headers: dict[str, str] = field(default_factory=dict)
    body: AsyncIterator[bytes] | None = None

    def chunks(self) -> AsyncIterator[bytes]:
        """The body, piece by piece (closed by the stream that made it)."""
        return self.body if self.body is not None else _nothing()


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


class Transport(Protocol):
    """What the agent client needs from HTTP; tests put a hostile or recorded one in its place."""

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
        """One exchange within ``timeout_s``; raise TransportError or TimeoutError on failure."""
        ...

    def stream(
        self,
        host: str,
        port: int,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        idle_timeout_s: float,
        max_bytes: int,
    ) -> AbstractAsyncContextManager[StreamAnswer]:
        """Open an exchange whose body is read piece by piece (a download); the answer's
        head must come within ``idle_timeout_s``, and so must each piece after it."""
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


class AiohttpTransport:
    """One shared ``aiohttp.ClientSession`` with keep-alive connections to every node."""

    def __init__(self, max_connections_per_node: int = 4, max_streams_per_node: int = 8) -> None:
        self._per_node = max_connections_per_node
        self._streams_per_node = max_streams_per_node
        self._session: aiohttp.ClientSession | None = None
        # Downloads hold a connection for minutes: they get a pool of their own, so a
        # transfer never makes a status call or a stop wait for a connection.
        self._stream_session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop (aiohttp binds to it).
        if self._session is None or self._session.closed:
            self._session = _new_session(self._per_node)
        return self._session

    def _stream_client(self) -> aiohttp.ClientSession:
        if self._stream_session is None or self._stream_session.closed:
            self._stream_session = _new_session(self._streams_per_node)
        return self._stream_session

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
        """One exchange; the whole of it, body included, within ``timeout_s``."""
        url = yarl.URL.build(scheme="http", host=host, port=port).join(yarl.URL(path))
        session = self._client()
        try:
            async with asyncio.timeout(timeout_s):
                async with session.request(
                    method,
                    url,
                    headers={"Accept-Encoding": "identity", **headers},
                    data=body,
                    allow_redirects=False,
                ) as resp:
                    declared = resp.content_length
                    if declared is not None and declared > max_bytes:
                        raise TransportError(
                            f"answer of {declared} bytes is over the {max_bytes}-byte cap"
                        )
                    data = await _read_capped(resp.content, max_bytes)
                    return HttpResponse(resp.status, resp.content_type or "", data)
        except aiohttp.ClientError as err:
            raise TransportError(_describe(err)) from err

    @contextlib.asynccontextmanager
    async def stream(
        self,
        host: str,
        port: int,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        idle_timeout_s: float,
        max_bytes: int,
    ) -> AsyncIterator[StreamAnswer]:
        """A download: the head within ``idle_timeout_s``, then the body piece by piece."""
        url = yarl.URL.build(scheme="http", host=host, port=port).join(yarl.URL(path))
        session = self._stream_client()
        try:
            async with asyncio.timeout(idle_timeout_s):
                resp = await session.request(
                    method,
                    url,
                    headers={"Accept-Encoding": "identity", **headers},
                    allow_redirects=False,
                )
        except aiohttp.ClientError as err:
            raise TransportError(_describe(err)) from err
        finished = False
        try:
            declared = resp.content_length
            if declared is not None and declared > max_bytes:
                raise TransportError(f"answer of {declared} bytes is over the {max_bytes}-byte cap")
            kept = {k: v for k in STREAM_HEADERS if (v := resp.headers.get(k)) is not None}

            async def body() -> AsyncGenerator[bytes, None]:
                nonlocal finished
                total = 0
                while True:
                    try:
                        async with asyncio.timeout(idle_timeout_s):
                            chunk = await resp.content.readany()
                    except TimeoutError as err:
                        raise TransportError(
                            f"the node sent nothing for {idle_timeout_s:g} s"
                        ) from err
                    except aiohttp.ClientError as err:
                        raise TransportError(_describe(err)) from err
                    if not chunk:
                        finished = True
                        return
                    total += len(chunk)
                    if total > max_bytes:
                        raise TransportError(f"answer is over the {max_bytes}-byte cap")
                    yield chunk

            pieces = body()
            try:
                yield StreamAnswer(resp.status, resp.content_type or "", declared, kept, pieces)
            finally:
                await pieces.aclose()
        finally:
            if finished:
                resp.release()  # read to its end: the connection may be used again
            else:
                resp.close()  # a body left half-read is never reused

    async def aclose(self) -> None:
        """Close the sessions and their connections."""
        for session in (self._session, self._stream_session):
            if session is not None:
                with contextlib.suppress(Exception):
                    await session.close()
        self._session = self._stream_session = None


def _new_session(per_host: int) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        limit=0,  # the fan-out (or the offload engine) caps calls per node; no global queue
        limit_per_host=per_host,
        use_dns_cache=False,  # nodes are called at IP addresses only
        enable_cleanup_closed=False,
        # Idle connections are dropped well before an agent closes them (it keeps them
        # 75 s, app.cli.SERVER_KEEP_ALIVE_S), so a call never reuses one being closed.
        keepalive_timeout=CLIENT_KEEP_ALIVE_S,
    )
    return aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,  # a compressed answer cannot slip past the size cap
        max_line_size=MAX_LINE_BYTES,
        max_field_size=MAX_FIELD_BYTES,
        max_headers=MAX_HEADERS,
        trust_env=False,  # never a proxy from the environment
        cookie_jar=aiohttp.DummyCookieJar(),
    )


async def _read_capped(stream: aiohttp.StreamReader, max_bytes: int) -> bytes:
    """The body, or TransportError as soon as it grows past ``max_bytes``."""
    out = bytearray()
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            return bytes(out)
        out += chunk
        if len(out) > max_bytes:
            raise TransportError(f"answer is over the {max_bytes}-byte cap")


def _describe(err: aiohttp.ClientError) -> str:
    """A short reason a person can act on."""
    if isinstance(err, aiohttp.ClientConnectorError):
        return f"cannot connect: {err.os_error.strerror or err.os_error}"
    if isinstance(err, aiohttp.ServerDisconnectedError):
        return "the node closed the connection before answering"
    if isinstance(err, aiohttp.ClientPayloadError):
        return f"broken answer body: {err}"
    if isinstance(err, aiohttp.ClientResponseError):
        return f"malformed answer: {err.message}"[:300]
    return f"{type(err).__name__}: {err}"[:300]
