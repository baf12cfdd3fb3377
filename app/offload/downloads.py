"""Serving the archive: one file with HTTP Range, or a whole session as one zip or tar.

Nothing is held in memory whole: files are read in pieces in worker threads as the
answer goes out. A session's archive has the length it will have known in advance (zip
stored without compression, tar with headers from ``tarfile``), so a client can show
progress and tell a cut-off download from a finished one.
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import anyio
import zipstream
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import iterate_in_threadpool

from app.errors import NotArchived, RecordingNotFound, SessionNotFound
from app.fleet.wire import Manifest
from app.offload import repository
from app.offload.archive import UnsafeName, paths_for
from app.offload.engine import OffloadEngine
from app.recordings.models import ArchiveState, Recording
from app.sessions import repository as session_repository
from common.http import ErrorBody

READ_CHUNK = 256 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
NOT_ARCHIVED = "not archived yet: POST /api/v1/offload"


def parse_range(header: str | None, size: int) -> tuple[int, int] | Literal["bad"] | None:
    """The one byte range ``header`` asks for, inclusive; None for the whole file (no
    header, a malformed one, or several ranges: a server may ignore Range), "bad" when
    it cannot be satisfied (starts past the end)."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            return "bad"
        return (max(0, size - n), size - 1)
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size or (last and int(last) < start):
        return "bad"
    return (start, end)


async def _read_range(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    fh = await anyio.to_thread.run_sync(open, path, "rb")
    try:
        await anyio.to_thread.run_sync(fh.seek, start)
        left = length
        while left > 0:
            chunk = await anyio.to_thread.run_sync(fh.read, min(READ_CHUNK, left))
            if not chunk:
                raise OSError(f"{path.name} ended {left} bytes early")
            left -= len(chunk)
            yield chunk
    finally:
        await anyio.to_thread.run_sync(fh.close)


def file_response(path: Path, range_header: str | None, media_type: str) -> Response:
    """``path`` whole (200) or one range of it (206); 416 for a range past its end."""
    size = path.stat().st_size
    span = parse_range(range_header, size)
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'attachment; filename="{path.name}"',
        "Cache-Control": "no-store",
    }
    if span == "bad":
        body = ErrorBody(
            detail=f"the range {range_header!r:.60} is outside the file's {size} bytes",
            code="range_not_satisfiable",
        )
        return JSONResponse(
            body.model_dump(exclude_none=True),
            status_code=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    if span is None:
        start, end, status = 0, size - 1, 200
    else:
        (start, end), status = span, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    return StreamingResponse(
        _read_range(path, start, length), status_code=status, media_type=media_type, headers=headers
    )


@dataclass(frozen=True)
class _Found:
    recording: Recording
    video: Path
    manifest: Path
    still: Path | None


def _archived(db: Session, recording_id: int, root: Path) -> _Found:
    row = repository.recording(db, recording_id)
    if row is None:
        raise RecordingNotFound(f"no recording {recording_id}; GET /api/v1/recordings")
    if row.archive_state not in (ArchiveState.archived, ArchiveState.confirmed):
        raise NotArchived(f"recording {recording_id} is {NOT_ARCHIVED}")
    try:
        paths = paths_for(root, row.manifest())
    except UnsafeName as err:
        raise NotArchived(f"recording {recording_id} is not in the archive: {err}") from err
    return _Found(row, paths.video, paths.manifest, paths.still)


async def recording_file(
    engine: OffloadEngine, recording_id: int, what: Literal["video", "manifest", "still"]
) -> Path:
    """The path of one archived recording's video, manifest or Lock View still."""
    root = engine.root
    found = await engine.fleet.store.run(lambda db: _archived(db, recording_id, root))
    path = {"video": found.video, "manifest": found.manifest, "still": found.still}[what]
    if path is None or not await anyio.to_thread.run_sync(path.is_file):
        label = {"video": "video", "manifest": "manifest", "still": "Lock View still"}[what]
        raise NotArchived(f"recording {recording_id} has no archived {label}")
    return path


async def manifest_of(engine: OffloadEngine, recording_id: int) -> Manifest:
    """The archived manifest (as the coordinator verified the file against)."""
    path = await recording_file(engine, recording_id, "manifest")
    text = await anyio.to_thread.run_sync(path.read_bytes)
    return Manifest.model_validate_json(text)


@dataclass(frozen=True)
class Entry:
    """One file of a session archive."""

    arcname: str
    path: Path
    size: int
    mtime: int


def _session_entries(db: Session, session_id: str, root: Path) -> list[Entry]:
    rows = repository.archived_in_session(db, session_id)
    if not rows:
        if session_repository.get(db, session_id) is None and not repository.by_session(
            db, session_id
        ):
            raise SessionNotFound(f"no session {session_id}; GET /api/v1/sessions")
        raise NotArchived(f"nothing of session {session_id} is {NOT_ARCHIVED}")
    entries: list[Entry] = []
    for row in rows:
        try:
            paths = paths_for(root, row.manifest())
        except UnsafeName:
            continue
        for path in (paths.video, paths.manifest, paths.still):
            if path is None:
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            entries.append(Entry(f"{session_id}/{path.name}", path, st.st_size, int(st.st_mtime)))
    if not entries:
        raise NotArchived(f"nothing of session {session_id} is {NOT_ARCHIVED}")
    return entries


def _tar_header(e: Entry) -> bytes:
    info = tarfile.TarInfo(e.arcname)
    info.size, info.mtime, info.mode = e.size, e.mtime, 0o644
    info.uname = info.gname = "camfleet"
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def tar_length(entries: list[Entry]) -> int:
    """The exact length of ``tar_stream(entries)``."""
    return sum(len(_tar_header(e)) + e.size + (-e.size) % 512 for e in entries) + 1024


def tar_stream(entries: list[Entry]) -> Iterator[bytes]:
    """A POSIX (pax) tar of ``entries``, piece by piece: tarfile's headers, each file's
    bytes read as they go out, the padding, and the two zero blocks that end it."""
    for e in entries:
        yield _tar_header(e)
        with open(e.path, "rb") as fh:
            left = e.size
            while left > 0:
                chunk = fh.read(min(READ_CHUNK, left))
                if not chunk:
                    raise OSError(f"{e.path.name} is shorter than when the archive began")
                left -= len(chunk)
                yield chunk
        if e.size % 512:
            yield b"\0" * (512 - e.size % 512)
    yield b"\0" * 1024


def zip_stream(entries: list[Entry]) -> zipstream.ZipStream:
    """A zip of ``entries``, stored (no compression: video does not shrink), sized."""
    zs = zipstream.ZipStream(compress_type=zipstream.ZIP_STORED, sized=True)
    for e in entries:
        zs.add_path(str(e.path), e.arcname)
    return zs


async def session_archive(
    engine: OffloadEngine, session_id: str, fmt: Literal["zip", "tar"]
) -> Response:
    """A session's archived files, manifests and stills as one streamed zip or tar."""
    root = engine.root
    entries = await engine.fleet.store.run(lambda db: _session_entries(db, session_id, root))
    if fmt == "tar":
        length, body = tar_length(entries), tar_stream(entries)
        media = "application/x-tar"
    else:
        zs = await anyio.to_thread.run_sync(zip_stream, entries)
        length, body, media = len(zs), iter(zs), "application/zip"
    headers = {
        "Content-Length": str(length),
        "Content-Disposition": f'attachment; filename="{session_id}.{fmt}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(iterate_in_threadpool(body), media_type=media, headers=headers)
