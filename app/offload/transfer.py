"""Pull one file from a node into its ``.part`` with Range resume, hashing as it arrives.

The size and SHA-256 to verify against are the manifest's, as the coordinator stored it;
nothing the node says about its file is believed. Every attempt asks for
``bytes={offset}-{size-1}``, takes at most the bytes missing, and fails (to be retried
with backoff, from the byte reached) when the node goes away or sends more.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from app.fleet.client import AgentClient, NodeAddress
from app.offload.archive import sha256_of_fd

# Writes go to the disk (and the hash) in a worker thread, one buffer at a time, while
# the loop receives the next one.
WRITE_BUFFER = 1024 * 1024
# Every this many bytes, the kernel is asked to start writing what came so far, so the
# final fsync finds little left to do and the disk works while the network does.
WRITEBACK_EVERY = 32 * 1024 * 1024
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-(\d+)/(\d+|\*)$")
_EXECUTOR = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="offload")


class PartBusy(Exception):
    """Another process holds the exclusive lock on this ``.part``."""


class TransferFailed(Exception):
    """The file could not be pulled; ``retry`` says whether another attempt may help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


class Paused(Exception):
    """The transfer stopped on purpose (the node began recording, policy 'skip')."""


@dataclass
class Progress:
    """One file's counters, read by the job's answer while the transfer runs."""

    bytes_done: int = 0
    bytes_received: int = 0
    resume_offsets: list[int] = field(default_factory=list)
    attempts: int = 0
    error: str | None = None


class PartFile:
    """An open ``.part`` under an exclusive lock, with the hash of what it holds."""

    def __init__(self, path: Path, fd: int, length: int, hasher: hashlib._Hash) -> None:
        self.path = path
        self.fd = fd
        self.length = length  # bytes on disk (and in the hash); set in the writer thread
        self.taken = length  # bytes on disk, on their way and buffered; the loop's count
        self.hasher = hasher
        self._chunks: list[bytes] = []  # taken, not yet handed to the writer thread
        self._buffered = 0
        self._written_back = length
        self._pending: concurrent.futures.Future[None] | None = None

    @classmethod
    def open_sync(cls, path: Path, size: int) -> PartFile:
        """Open (or create) and lock ``path``; hash what an interrupted transfer left.

        PartBusy when another process holds the lock. A ``.part`` longer than the file
        can be is not a prefix of it: it starts over.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            os.close(fd)
            raise PartBusy(f"{path.name} is being written by another process") from err
        try:
            length = os.fstat(fd).st_size
            if length > size:
                os.ftruncate(fd, 0)
                length = 0
            hasher = sha256_of_fd(fd, length)
            os.lseek(fd, length, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, length, hasher)

    def _write_sync(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
            self.hasher.update(chunk)
            self.length += len(chunk)
        if self.length - self._written_back >= WRITEBACK_EVERY:
            # DONTNEED starts the writeback of those dirty pages without waiting for it
            # (and keeps an archive of footage from pushing everything else out of memory).
            os.posix_fadvise(
                self.fd,
                self._written_back,
                self.length - self._written_back,
                os.POSIX_FADV_DONTNEED,
            )
            self._written_back = self.length

    async def write(self, data: bytes) -> None:
        """Take ``data`` (not copied); it reaches the disk with the next full buffer."""
        self._chunks.append(data)
        self._buffered += len(data)
        self.taken += len(data)
        if self._buffered >= WRITE_BUFFER:
            await self._submit()

    async def _submit(self) -> None:
        await self._wait()
        if not self._chunks:
            return
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        self._pending = _EXECUTOR.submit(self._write_sync, chunks)

    async def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.wrap_future(pending)

    async def drain(self) -> None:
        """Everything taken is written (not yet fsynced)."""
        await self._submit()
        await self._wait()

    def reset_sync(self) -> None:
        """Start over from byte 0 (the node ignored the Range)."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.length = self.taken = self._written_back = 0
        self.hasher = hashlib.sha256()

    def fsync_sync(self) -> None:
        """The bytes are on the disk."""
        os.fsync(self.fd)

    def close(self) -> None:
        """Release the lock. A write still under way in its thread finishes first, so
        the descriptor is never closed under it."""
        pending, self._pending = self._pending, None
        if pending is not None:
            with contextlib.suppress(Exception):
                pending.result()
        with contextlib.suppress(OSError):
            os.close(self.fd)


@dataclass
class Pull:
    """Everything one file's transfer needs."""

    client: AgentClient
    address: Callable[[], NodeAddress | None]
    name: str
    size: int
    idle_timeout_s: float
    max_attempts: int
    backoff_s: Callable[[int], float]
    # The pace in bytes/s right now (0: none); raises Paused to stop for now.
    pace: Callable[[], float]


async def pull(job: Pull, part: PartFile, progress: Progress) -> None:
    """Fill ``part`` up to ``job.size`` bytes, attempt after attempt; TransferFailed when
    the attempts run out or a retry cannot help, Paused when the policy says stop."""
    progress.bytes_done = part.length
    while part.length < job.size:
        if progress.attempts >= job.max_attempts:
            raise TransferFailed(
                f"gave up after {progress.attempts} attempts: {progress.error}", retry=False
            )
        job.pace()  # Paused before a byte is asked for
        progress.attempts += 1
        try:
            await _attempt(job, part, progress)
        except TransferFailed as err:
            progress.error = str(err)
            if not err.retry:
                raise
            if progress.attempts < job.max_attempts:
                await asyncio.sleep(job.backoff_s(progress.attempts))
        finally:
            await part.drain()  # bytes received before a failure are good: keep them
            progress.bytes_done = part.length
    progress.error = None


async def _attempt(job: Pull, part: PartFile, progress: Progress) -> None:
    addr = job.address()
    if addr is None:
        raise TransferFailed("the node is no longer in the fleet", retry=False)
    offset = part.length
    if offset > 0:
        progress.resume_offsets.append(offset)
    async with job.client.download(
        addr,
        job.name,
        range_header=f"bytes={offset}-{job.size - 1}",
        max_bytes=job.size,
        idle_timeout_s=job.idle_timeout_s,
    ) as call:
        if not call.ok or call.value is None:
            raise _refusal(call.status_code, call.error or "failed", job, offset)
        answer = call.value
        if answer.status == 200 and offset > 0:
            await asyncio.get_running_loop().run_in_executor(_EXECUTOR, part.reset_sync)
        elif answer.status == 206:
            _check_range(answer.headers.get("content-range", ""), offset, job.size)
        elif answer.status != 200:
            raise TransferFailed(f"the node answered HTTP {answer.status} to a download")
        await _receive(job, part, progress, answer.chunks())
    if part.taken < job.size:
        raise TransferFailed(f"the answer ended at byte {part.taken} of {job.size}")


async def _receive(
    job: Pull, part: PartFile, progress: Progress, chunks: AsyncIterator[bytes]
) -> None:
    window_start, window_bytes, rate = time.monotonic(), 0, job.pace()
    checked = window_start
    try:
        async for chunk in chunks:
            if part.taken + len(chunk) > job.size:
                raise TransferFailed(
                    f"the node sent more than the manifest's {job.size} bytes; cut off"
                )
            await part.write(chunk)
            progress.bytes_received += len(chunk)
            progress.bytes_done = part.taken
            window_bytes += len(chunk)
            now = time.monotonic()
            if now - checked >= 0.5:  # the node may have begun recording
                checked = now
                new_rate = job.pace()
                if new_rate != rate:
                    rate, window_start, window_bytes = new_rate, now, 0
            if rate > 0:
                ahead = window_bytes / rate - (now - window_start)
                if ahead > 0:
                    await asyncio.sleep(ahead)
    except OSError as err:
        raise TransferFailed(f"cannot write the archive: {err}", retry=False) from err
    except Exception as err:
        if isinstance(err, TransferFailed | Paused):
            raise
        raise TransferFailed(f"the node went away mid-file: {err}"[:300]) from err


def _refusal(status: int | None, error: str, job: Pull, offset: int) -> TransferFailed:
    """Why an attempt got no body, and whether another may help."""
    if status is None or status >= 500:
        return TransferFailed(error)
    if status == 404:
        return TransferFailed(f"{job.name} is not on the node any more: {error}", retry=False)
    if status == 416:
        return TransferFailed(
            f"the node's {job.name} is shorter than the manifest's {job.size} bytes "
            f"(asked from byte {offset})",
            retry=False,
        )
    return TransferFailed(f"the node refused the download (HTTP {status}): {error}", retry=False)


def _check_range(header: str, offset: int, size: int) -> None:
    """A 206 must be the range asked for, of a file of the manifest's size."""
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise TransferFailed(f"the node's Content-Range {header!r:.80} is not one range")
    start, total = int(match.group(1)), match.group(3)
    if total != "*" and int(total) != size:
        raise TransferFailed(
            f"the node's file is {total} bytes; its manifest says {size}", retry=False
        )
    if start != offset:
        raise TransferFailed(f"the node answered from byte {start}, not {offset}")
