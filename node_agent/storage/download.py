"""Downloads of a recording, a manifest or a still, with HTTP Range, even while it grows.

The file is opened and measured once, when the request comes; the answer's
Content-Length and Content-Range are computed from that length and no byte past it is
ever read, so a recording still being written is served whole up to that instant
(never "too much data for declared Content-Length"). Reads happen in a worker thread,
a chunk at a time, so a download never blocks the event loop or starves the recorder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio.to_thread
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from node_agent.errors import AgentError
from node_agent.schemas import ErrorBody

CHUNK_BYTES = 256 * 1024
_DIGITS = re.compile(r"[0-9]{1,19}")  # ASCII digits only (str.isdigit takes '²')

MEDIA_TYPES = {".mp4": "video/mp4", ".json": "application/json", ".jpg": "image/jpeg"}


class RangeNotSatisfiable(AgentError):
    """The Range starts at or past the end of the file (as long as it was when asked)."""

    status_code = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, length: int) -> None:
        super().__init__(message)
        self.length = length


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Bytes ``start`` to ``end`` inclusive, as in ``Content-Range``."""

    start: int
    end: int

    @property
    def size(self) -> int:
        """How many bytes the range holds."""
        return self.end - self.start + 1


def parse_range(header: str | None, length: int) -> ByteRange | None:
    """The one byte range ``header`` asks for within ``length`` bytes.

    None means "send the whole file": no Range, a unit other than bytes, several ranges
    or a malformed one (RFC 9110 lets a server ignore those). A well-formed range that
    starts at or past the end raises RangeNotSatisfiable (416).
    """
    if header is None:
        return None
    unit, eq, spec = header.partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = (part.strip() for part in spec.partition("-"))
    if not dash:
        return None
    if not first:  # a suffix: the last N bytes
        if not _DIGITS.fullmatch(last):
            return None
        suffix = int(last)
        if suffix == 0 or length == 0:
            raise RangeNotSatisfiable(
                f"Range {header!r} asks for no bytes of a {length}-byte file", length
            )
        return ByteRange(max(0, length - suffix), length - 1)
    if not _DIGITS.fullmatch(first) or (last and not _DIGITS.fullmatch(last)):
        return None
    start = int(first)
    end = int(last) if last else length - 1
    if last and end < start:
        return None
    if start >= length:
        raise RangeNotSatisfiable(
            f"Range {header!r} starts at byte {start}; the file had {length} bytes when asked",
            length,
        )
    return ByteRange(start, min(end, length - 1))


@dataclass
class Snapshot:
    """An open file and the length it had when it was opened."""

    fd: int
    length: int

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_snapshot(path: Path) -> Snapshot:
    """Open ``path`` and measure it once: what a download of it will serve."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return Snapshot(fd, os.fstat(fd).st_size)
    except BaseException:
        os.close(fd)
        raise


class SnapshotResponse(Response):
    """Sends ``range`` (or all) of an opened file, up to its measured length, in chunks
    read off the event loop; closes the file whatever happens."""

    def __init__(self, snapshot: Snapshot, name: str, byte_range: ByteRange | None) -> None:
        self.snapshot = snapshot
        self.status_code = 200 if byte_range is None else 206
        self.start = 0 if byte_range is None else byte_range.start
        self.size = snapshot.length if byte_range is None else byte_range.size
        self.media_type = media_type(name)
        self.background = None
        headers = {
            "content-length": str(self.size),
            "accept-ranges": "bytes",
            "content-disposition": f"attachment; filename*=utf-8''{quote(name)}",
            "cache-control": "no-store",  # a growing file is longer at the next request
        }
        if byte_range is not None:
            headers["content-range"] = (
                f"bytes {byte_range.start}-{byte_range.end}/{snapshot.length}"
            )
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if scope.get("method", "GET").upper() == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            offset, left = self.start, self.size
            while True:
                want = min(CHUNK_BYTES, left)
                chunk = await anyio.to_thread.run_sync(os.pread, self.snapshot.fd, want, offset)
                if want and not chunk:
                    # Shorter than when it was measured: our files only grow, so something
                    # else truncated it. Cut the connection rather than answer a lie.
                    raise OSError(f"file shrank under a download at byte {offset}")
                offset += len(chunk)
                left -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
                if left <= 0:
                    return
        finally:
            self.snapshot.close()


def ranged_response(snapshot: Snapshot, name: str, header: str | None) -> Response:
    """``snapshot`` whole (200) or the one range ``header`` asks for (206); a range that
    starts past the end is a 416 naming the length. The snapshot is closed on every way
    out but the answer, which closes it when sent."""
    try:
        byte_range = parse_range(header, snapshot.length)
    except RangeNotSatisfiable as err:
        snapshot.close()
        body = ErrorBody(detail=err.message, code=err.code)
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=416,
            headers={"Content-Range": f"bytes */{err.length}"},
        )
    except BaseException:
        snapshot.close()
        raise
    return SnapshotResponse(snapshot, name, byte_range)


def media_type(name: str) -> str:
    """The content type a served file is sent with."""
    return MEDIA_TYPES.get(Path(name).suffix, "application/octet-stream")


def download_responses() -> dict[int | str, dict[str, Any]]:
    """The OpenAPI description of a download's answers (200 whole, 206 a range)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    part = {t: binary for t in MEDIA_TYPES.values()}  # a range of a manifest is not JSON
    # A whole .json is a manifest: the route adds its schema (``model``).
    whole = {"video/mp4": binary, "application/json": {}, "image/jpeg": binary}
    range_headers = {
        "Content-Range": {"schema": {"type": "string"}, "description": "bytes START-END/LENGTH"},
        "Accept-Ranges": {"schema": {"type": "string"}},
    }
    return {
        200: {
            "description": "The whole file, as long as it was when the request came",
            "content": whole,
        },
        206: {
            "description": "The requested byte range",
            "content": part,
            "headers": range_headers,
        },
    }
