"""The transfer step against a real aiohttp server of the test's own that serves a file
with Range (and misbehaves on request): resume from the byte reached, cut-off of a node
that sends too much, a Range the node ignored, a file that is not the manifest's.
Plus the pure parts of serving the archive: Range parsing and the tar's length."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import io
import os
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from app.fleet.client import AgentClient, NodeAddress
from app.offload.downloads import Entry, parse_range, tar_length, tar_stream
from app.offload.transfer import PartBusy, PartFile, Progress, Pull, TransferFailed, pull

DATA = hashlib.shake_256(b"offload").digest(3 * 1024 * 1024 + 17)
NAME = "S1_CAM_C_20261208_101500.mp4"
Behaviour = Callable[[web.Request, list[str]], Awaitable[web.StreamResponse]]


async def _serve(
    request: web.Request, data: bytes, cut_at: int | None = None
) -> web.StreamResponse:
    """The agent's download: whole, or the one range asked for; optionally the connection
    is dropped after ``cut_at`` bytes of the file."""
    header = request.headers.get("Range")
    start, end = 0, len(data) - 1
    status = 200
    if header:
        first, _, last = header.removeprefix("bytes=").partition("-")
        start, end, status = int(first), int(last or len(data) - 1), 206
    resp = web.StreamResponse(status=status)
    resp.content_type = "video/mp4"
    resp.content_length = end - start + 1
    if status == 206:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    await resp.prepare(request)
    stop = end + 1 if cut_at is None else min(end + 1, max(cut_at, start))
    for i in range(start, stop, 65536):
        await resp.write(data[i : min(i + 65536, stop)])
    if cut_at is not None and stop <= end:
        assert request.transport is not None
        request.transport.close()  # the node went away mid-file
    return resp


async def _with_server(
    behaviour: Behaviour, body: Callable[[NodeAddress, list[str]], Awaitable[None]]
) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request.headers.get("Range", ""))
        return await behaviour(request, seen)

    app = web.Application()
    app.router.add_get("/api/v1/recordings/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await body(NodeAddress("n1", "127.0.0.1", port, "t" * 20), seen)
    finally:
        await runner.cleanup()


def _job(client: AgentClient, addr: NodeAddress, size: int = len(DATA), attempts: int = 5) -> Pull:
    return Pull(
        client=client,
        address=lambda: addr,
        name=NAME,
        size=size,
        idle_timeout_s=2.0,
        max_attempts=attempts,
        backoff_s=lambda n: 0.01,
        pace=lambda: 0.0,
    )


async def _pull(
    addr: NodeAddress, part_path: Path, size: int = len(DATA)
) -> tuple[PartFile, Progress]:
    client = AgentClient(2.0)
    part = PartFile.open_sync(part_path, size)
    progress = Progress()
    try:
        await pull(_job(client, addr, size), part, progress)
    finally:
        part.close()
        await client.aclose()
    return part, progress


def test_a_node_that_drops_mid_file_is_resumed_from_the_byte_reached(tmp_path: Path) -> None:
    cuts = [1_000_000, 2_200_000]

    async def flaky(request: web.Request, seen: list[str]) -> web.StreamResponse:
        cut = cuts.pop(0) if cuts else None
        return await _serve(request, DATA, cut)

    async def body(addr: NodeAddress, seen: list[str]) -> None:
        part, progress = await _pull(addr, tmp_path / ".f.part")
        assert part.hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()
        assert (tmp_path / ".f.part").read_bytes() == DATA
        # Each attempt asked for the bytes from where the last one stopped, and no byte
        # was fetched twice.
        assert seen == [
            f"bytes=0-{len(DATA) - 1}",
            f"bytes=1000000-{len(DATA) - 1}",
            f"bytes=2200000-{len(DATA) - 1}",
        ]
        assert progress.resume_offsets == [1_000_000, 2_200_000]
        assert progress.bytes_received == len(DATA)
        assert progress.attempts == 3

    asyncio.run(_with_server(flaky, body))


def test_an_interrupted_part_is_hashed_then_continued(tmp_path: Path) -> None:
    (tmp_path / ".f.part").write_bytes(DATA[:123_457])

    async def body(addr: NodeAddress, seen: list[str]) -> None:
        part, progress = await _pull(addr, tmp_path / ".f.part")
        assert part.hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()
        assert seen == [f"bytes=123457-{len(DATA) - 1}"]
        assert progress.bytes_received == len(DATA) - 123_457

    asyncio.run(_with_server(lambda r, s: _serve(r, DATA), body))


@pytest.mark.parametrize("declared", [True, False])
def test_a_node_that_sends_more_than_the_manifest_says_is_cut_off(
    tmp_path: Path, declared: bool
) -> None:
    """The manifest says 1 MiB; the node answers with a longer file, with a
    Content-Length that says so, or chunked with no length at all."""

    async def liar(request: web.Request, seen: list[str]) -> web.StreamResponse:
        if declared:
            return web.Response(body=DATA, status=200, content_type="video/mp4")
        resp = web.StreamResponse(status=200)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for i in range(0, len(DATA), 65536):
            await resp.write(DATA[i : i + 65536])
        return resp

    async def body(addr: NodeAddress, seen: list[str]) -> None:
        with pytest.raises(TransferFailed, match="1048576") as err:
            await _pull(addr, tmp_path / ".f.part", size=1024 * 1024)
        assert "gave up after 5 attempts" in str(err.value)
        assert (tmp_path / ".f.part").stat().st_size <= 1024 * 1024

    asyncio.run(_with_server(liar, body))


def test_a_range_the_node_ignored_starts_the_part_over(tmp_path: Path) -> None:
    (tmp_path / ".f.part").write_bytes(DATA[:5000])

    async def whole(request: web.Request, seen: list[str]) -> web.StreamResponse:
        return web.Response(body=DATA, status=200, content_type="video/mp4")

    async def body(addr: NodeAddress, seen: list[str]) -> None:
        part, _ = await _pull(addr, tmp_path / ".f.part")
        assert part.hasher.hexdigest() == hashlib.sha256(DATA).hexdigest()
        assert (tmp_path / ".f.part").read_bytes() == DATA

    asyncio.run(_with_server(whole, body))


def test_a_file_of_another_size_than_the_manifest_fails_at_once(tmp_path: Path) -> None:
    (tmp_path / ".f.part").write_bytes(DATA[:10])

    async def body(addr: NodeAddress, seen: list[str]) -> None:
        with pytest.raises(TransferFailed, match="manifest says") as err:
            await _pull(addr, tmp_path / ".f.part", size=len(DATA) - 1)
        assert err.value.retry is False
        assert len(seen) == 1

    async def longer(request: web.Request, seen: list[str]) -> web.StreamResponse:
        return await _serve(request, DATA + b"x")

    asyncio.run(_with_server(longer, body))


def test_a_part_locked_by_another_process_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / ".f.part"
    path.write_bytes(b"abc")
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        with pytest.raises(PartBusy):
            PartFile.open_sync(path, 100)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"abc"
    PartFile.open_sync(path, 100).close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-1000", (0, 99)),
        ("bytes=90-1000", (90, 99)),
        ("bytes=100-", "bad"),
        ("bytes=50-40", "bad"),
        ("bytes=-0", "bad"),
        ("bytes=0-1,5-6", None),  # several ranges: the whole file, as a server may
        ("items=0-1", None),
        ("bytes=-", None),
    ],
)
def test_range_parsing(header: str | None, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_the_tar_length_is_known_in_advance_and_tarfile_reads_it(tmp_path: Path) -> None:
    entries = []
    for i, size in enumerate((0, 1, 511, 512, 513, 70_000)):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(os.urandom(size))
        entries.append(Entry(f"S1/{'x' * (120 if i == 5 else 3)}{i}.bin", p, size, 1_700_000_000))
    blob = b"".join(tar_stream(entries))
    assert len(blob) == tar_length(entries)
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        for e in entries:
            member = tar.extractfile(e.arcname)
            assert member is not None and member.read() == e.path.read_bytes()
