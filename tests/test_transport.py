"""AgentClient + AiohttpTransport against raw asyncio servers on loopback: keep-alive,
stale connections, deadlines, and hostile answers, each of which must become that node's
failed ``NodeCall`` (with a reason) while the good nodes of the same fan-out succeed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from app.fleet.client import MAX_ANSWER_BYTES, AgentClient, NodeAddress, NodeCall
from app.fleet.fanout import Fanout
from app.fleet.state import FleetState
from app.fleet.transport import AiohttpTransport
from bench.fakenode import FakeNode
from node_agent.schemas import NodeStatus

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
DEADLINE_S = 0.5
MIB = 1024 * 1024


def status_body(node_id: str = "good") -> bytes:
    """A valid ``GET /api/v1/status`` answer (the fake node's, so there is one to keep)."""
    return json.dumps(FakeNode(node_id=node_id).status()).encode()


def ok_answer(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
        % (len(body), extra, body)
    )


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
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
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


async def good(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(ok_answer(status_body()))
        await writer.drain()


def test_keep_alive_reuses_one_connection() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await good(reader, writer)

    async def main() -> list[NodeCall[NodeStatus]]:
        client = AgentClient(timeout_s=2.0)
        async with serve(handler) as port:
            node = NodeAddress("good", "127.0.0.1", port, "t")
            calls = [await client.status(node) for _ in range(5)]
            await client.aclose()
        return calls

    calls = asyncio.run(main())
    assert [c.ok for c in calls] == [True] * 5
    assert all(c.value is not None and c.value.node_id == "good" for c in calls)
    assert connections == 1


def test_a_connection_the_node_closed_is_not_reused() -> None:
    served = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_request(reader)
        served += 1
        # answers as if it kept the connection alive, then closes it anyway
        writer.write(ok_answer(status_body(f"n{served}")))
        await writer.drain()

    async def main() -> list[NodeCall[NodeStatus]]:
        client = AgentClient(timeout_s=2.0)
        out = []
        async with serve(handler) as port:
            node = NodeAddress("n", "127.0.0.1", port, "t")
            for _ in range(3):
                out.append(await client.status(node))
                await asyncio.sleep(0.05)
            await client.aclose()
        return out

    calls = asyncio.run(main())
    assert [c.ok for c in calls] == [True, True, True], [c.error for c in calls]
    assert [c.value.node_id for c in calls if c.value] == ["n1", "n2", "n3"]


def test_silent_refused_and_busy_nodes_get_their_own_results_all_at_once() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async def conflict(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        body = b'{"detail":"this node is already recording session X","code":"recording_conflict"}'
        writer.write(b"HTTP/1.1 409 Conflict\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        await reader.read()

    async def main() -> tuple[list[NodeCall[NodeStatus]], float, FleetState]:
        async with serve(conflict) as gone_port:
            pass  # closed again: nobody listens there now
        client = AgentClient(timeout_s=DEADLINE_S)
        state = FleetState(offline_after_s=30)
        fanout = Fanout(client, state)
        async with serve(silent) as p1, serve(conflict) as p2, serve(good) as p3:
            nodes = [
                NodeAddress("silent", "127.0.0.1", p1, "t"),
                NodeAddress("busy", "127.0.0.1", p2, "t"),
                NodeAddress("gone", "127.0.0.1", gone_port, "t"),
                NodeAddress("good", "127.0.0.1", p3, "t"),
            ]
            for n in nodes:
                state.set_address(n, n.node_id.upper())
            t0 = time.perf_counter()
            calls = await fanout.each(nodes, "status", client.status)
            elapsed = time.perf_counter() - t0
            await client.aclose()
        return calls, elapsed, state

    calls, elapsed, state = asyncio.run(main())
    silent_call, busy_call, gone_call, good_call = calls
    assert not silent_call.ok and silent_call.unreachable
    assert f"no answer within {DEADLINE_S:g} s" in str(silent_call.error)
    assert not busy_call.ok and busy_call.status_code == 409
    assert busy_call.error == "this node is already recording session X"
    assert not gone_call.ok and gone_call.unreachable and "cannot connect" in str(gone_call.error)
    assert good_call.ok and good_call.value is not None
    assert elapsed < DEADLINE_S + 1.0  # all at once: the slowest node sets the pace
    # the fan-out's bookkeeping: a 409 is an answer (online), silence and refusal are not
    assert state.online("busy") and state.online("good")
    assert not state.online("silent") and not state.online("gone")
    assert "no answer within" in str(state.cache["silent"].last_error)


# --- hostile answers: (name, handler, reason the failed call must carry) ---------------


async def _drip_forever(writer: asyncio.StreamWriter, piece: bytes, pause_s: float) -> None:
    while True:
        writer.write(piece)
        await writer.drain()
        await asyncio.sleep(pause_s)


async def long_chunk_size(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    writer.write(b"f" * (70 * 1024) + b"\r\nx\r\n0\r\n\r\n")  # a size no integer holds
    await writer.drain()
    await reader.read()


async def endless_header(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    await _drip_forever(writer, b"a" * 4096, 0.001)


async def invalid_status_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
    await writer.drain()
    await reader.read()


async def huge_length(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000\r\n\r\n")
    await _drip_forever(writer, b"x" * 65536, 0.001)


async def gib_chunk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n")
    piece = b"x" * MIB
    for _ in range(8):  # a few MB of the declared GiB, as fast as the client takes them
        writer.write(piece)
        await writer.drain()
    await reader.read()


async def never_ending_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    await _drip_forever(writer, b"1\r\n \r\n", 0.02)  # under every cap, but never done


async def short_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{")
    await writer.drain()
    await reader.read()  # holds the connection open without sending the rest


async def garbage_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(ok_answer(b"{this is not json"))
    await writer.drain()
    await reader.read()


async def not_the_model(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(ok_answer(b'{"hello": "world"}'))
    await writer.drain()
    await reader.read()


async def closes_midway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"node_id":')
    await writer.drain()


HOSTILE: list[tuple[str, Handler, str]] = [
    ("chunk_size_line_over_64k", long_chunk_size, r"unreachable: (malformed|broken)"),
    ("endless_header", endless_header, r"unreachable: malformed answer: Got more than 8192 bytes"),
    ("invalid_status_line", invalid_status_line, r"unreachable: malformed answer"),
    ("content_length_10_gb", huge_length, r"10000000000 bytes is over the 262144-byte cap"),
    ("gib_chunk", gib_chunk, r"over the 262144-byte cap"),
    ("body_never_ends", never_ending_body, rf"no answer within {DEADLINE_S:g} s"),
    ("body_shorter_than_length", short_body, rf"no answer within {DEADLINE_S:g} s"),
    ("closed_midway", closes_midway, r"unreachable: broken answer body"),
    ("garbage_json", garbage_json, r"answered something unexpected: .*(JSON|json)"),
    ("not_the_model", not_the_model, r"answered something unexpected: \d+ problems, first at"),
]


@pytest.mark.parametrize(
    ("handler", "reason"), [h[1:] for h in HOSTILE], ids=[h[0] for h in HOSTILE]
)
def test_a_hostile_answer_fails_only_its_node(handler: Handler, reason: str) -> None:
    async def main() -> tuple[list[NodeCall[NodeStatus]], float]:
        client = AgentClient(timeout_s=DEADLINE_S)
        fanout = Fanout(client, FleetState(offline_after_s=30))
        async with serve(handler) as bad_port, serve(good) as p1, serve(good) as p2:
            nodes = [
                NodeAddress("good-1", "127.0.0.1", p1, "t"),
                NodeAddress("hostile", "127.0.0.1", bad_port, "t"),
                NodeAddress("good-2", "127.0.0.1", p2, "t"),
            ]
            t0 = time.perf_counter()
            calls = await fanout.each(nodes, "status", client.status)
            elapsed = time.perf_counter() - t0
            await client.aclose()
        return calls, elapsed

    calls, elapsed = asyncio.run(main())
    good1, hostile, good2 = calls
    assert not hostile.ok and hostile.error is not None
    assert re.search(reason, hostile.error), hostile.error
    assert elapsed < DEADLINE_S + 1.0, elapsed
    assert good1.ok and good2.ok, (good1.error, good2.error)


def test_a_64_kib_chunk_line_of_padding_is_parsed_right() -> None:
    """Leading zeros and an extension make a 140 KiB chunk-size line that is still valid
    HTTP: it is skipped in bounded memory and the chunk after it is read correctly."""
    body = status_body("padded")

    async def padded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        size = b"0" * (70 * 1024) + b"%x;ext=" % len(body) + b"a" * (70 * 1024)
        writer.write(size + b"\r\n" + body + b"\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def main() -> NodeCall[NodeStatus]:
        client = AgentClient(timeout_s=DEADLINE_S)
        async with serve(padded) as port:
            call = await client.status(NodeAddress("padded", "127.0.0.1", port, "t"))
            await client.aclose()
        return call

    call = asyncio.run(main())
    assert call.ok and call.value is not None and call.value.node_id == "padded", call.error


def _max_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def test_a_declared_gib_chunk_streams_in_bounded_memory() -> None:
    """The largest cap (a manifest list, 16 MiB) against a 1 GiB chunk sent at full speed:
    the read stops at the cap and the process's peak memory grows far less than the chunk."""
    sent = 0

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40000000\r\n")
        piece = b"x" * MIB
        for _ in range(64):
            writer.write(piece)
            await writer.drain()
            sent += len(piece)
        await reader.read()

    async def main() -> NodeCall[object]:
        client = AgentClient(timeout_s=5.0)
        async with serve(flood) as port:
            call = await client.recordings(NodeAddress("flood", "127.0.0.1", port, "t"))
            await client.aclose()
        return call  # type: ignore[return-value]

    before = _max_rss_bytes()
    t0 = time.perf_counter()
    call = asyncio.run(main())
    elapsed = time.perf_counter() - t0
    growth = _max_rss_bytes() - before
    cap = MAX_ANSWER_BYTES["recordings"]
    assert not call.ok and f"over the {cap}-byte cap" in str(call.error), call.error
    assert sent < 64 * MIB  # the client hung up instead of draining the lot
    assert growth < 100 * MIB, f"peak RSS grew by {growth / MIB:.0f} MiB"
    assert elapsed < 5.0 + 1.0


def test_a_transport_is_swappable_and_shared_across_clients() -> None:
    """Two clients on one AiohttpTransport share its keep-alive connection."""
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await good(reader, writer)

    async def main() -> list[bool]:
        transport = AiohttpTransport()
        a = AgentClient(timeout_s=1.0, transport=transport)
        b = AgentClient(timeout_s=1.0, transport=transport)
        async with serve(handler) as port:
            node = NodeAddress("good", "127.0.0.1", port, "t")
            oks = [(await a.status(node)).ok, (await b.status(node)).ok]
            await transport.aclose()
        return oks

    assert asyncio.run(main()) == [True, True]
    assert connections == 1
