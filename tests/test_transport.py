"""The fan-out transport against real sockets: framing, keep-alive, stale connections, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from app.fleet.http1 import HttpError, HttpPool

from app.fleet.client import AgentClient, NodeAddress, NodeCall
from node_agent.schemas import NodeStatus

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """A raw TCP server on loopback; every connection is closed when the block ends."""
    writers: set[asyncio.StreamWriter] = set()
    tasks: set[asyncio.Task[None]] = set()

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        for writer in writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        await server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


def test_keep_alive_reuses_one_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def main() -> list[bytes]:
        pool = HttpPool()
        async with serve(handler) as port:
            bodies = [(await pool.request("127.0.0.1", port, "GET", "/")).body for _ in range(5)]
            await pool.aclose()
        return bodies

    assert asyncio.run(main()) == [b"ok"] * 5
    assert connections == 1


def test_chunked_and_close_delimited_bodies() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"
        )
        await writer.drain()
        await reader.read()  # until the client hangs up

    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.0 200 OK\r\n\r\nall of it")
        await writer.drain()

    async def main() -> tuple[bytes, bytes]:
        pool = HttpPool()
        async with serve(chunked) as p1, serve(until_close) as p2:
            a = (await pool.request("127.0.0.1", p1, "GET", "/")).body
            b = (await pool.request("127.0.0.1", p2, "GET", "/")).body
            await pool.aclose()
        return a, b

    assert asyncio.run(main()) == (b"hello, world", b"all of it")


def test_a_stale_pooled_connection_is_retried_on_a_fresh_one() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        # answers as if it kept the connection, then closes it anyway
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(served).encode())
        await writer.drain()

    async def main() -> list[bytes]:
        pool = HttpPool()
        out = []
        async with serve(handler) as port:
            for _ in range(3):
                out.append((await pool.request("127.0.0.1", port, "POST", "/", body=b"{}")).body)
                await asyncio.sleep(0.05)
            await pool.aclose()
        return out

    assert asyncio.run(main()) == [b"1", b"2", b"3"]


def test_garbage_is_an_error_not_a_crash() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    async def main() -> None:
        async with serve(handler) as port:
            await HttpPool().request("127.0.0.1", port, "GET", "/")

    with pytest.raises(HttpError, match="not an HTTP"):
        asyncio.run(main())


def test_client_results_per_node_for_silent_refused_and_error_answers() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def conflict(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"detail":"this node is already recording session X","code":"recording_conflict"}'
        writer.write(b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        await reader.read()

    async def main() -> tuple[list[NodeCall[NodeStatus]], float]:
        async with serve(conflict) as gone_port:
            pass  # closed again: nobody listens there now
        client = AgentClient(timeout_s=0.5)
        async with serve(silent) as p1, serve(conflict) as p2:
            nodes = [
                NodeAddress("silent", "127.0.0.1", p1, "t"),
                NodeAddress("busy", "127.0.0.1", p2, "t"),
                NodeAddress("gone", "127.0.0.1", gone_port, "t"),
            ]
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            calls = await client.fan_out(nodes, client.status)
            elapsed = loop.time() - t0
            await client.aclose()
        return calls, elapsed

    calls, elapsed = asyncio.run(main())
    silent_call, busy_call, gone_call = calls
    assert not silent_call.ok and silent_call.unreachable and "0.5 s" in str(silent_call.error)
    assert not busy_call.ok and busy_call.status_code == 409
    assert busy_call.error == "this node is already recording session X"
    assert not gone_call.ok and gone_call.unreachable and "cannot connect" in str(gone_call.error)
    assert elapsed < 1.5  # all at once: the slowest node sets the pace, not the sum
