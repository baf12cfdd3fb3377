"""Relays to the nodes for tools that copy footage themselves (``camfleet offload``):
a node's file streamed through, a confirm passed on, and deletes of offloaded footage.

Only files the coordinator knows are relayed: a recording from its stored manifests (at
most its manifest's size), that recording's manifest or its Lock View still. A file still
being written, or any other name, is not the coordinator's to hand out.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator

from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session

from app.context import Fleet
from app.errors import BadName, NodeNotFound, NodeRefused, NodeUnreachable, RecordingNotFound
from app.fleet.client import NodeAddress
from app.fleet.transport import StreamAnswer, TransportError
from app.fleet.wire import ConfirmRequest, ConfirmResult
from app.nodes import service as node_service
from app.offload import repository
from app.offload.archive import CAM_ID
from app.offload.models import DeleteFleet, DeleteNode
from app.recordings import repository as recording_repository
from app.recordings import service as recording_service

# A name the agent serves: one path component, its own alphabet, a known extension.
SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,250}\.(mp4|json|jpg)$")
_RANGE_HEADER = re.compile(r"^bytes=[0-9, -]{1,100}$")
MEDIA = {"mp4": "video/mp4", "json": "application/json", "jpg": "image/jpeg"}
MAX_SIDE_FILE_BYTES = 16 * 1024 * 1024  # a manifest or a still


def check_name(name: str) -> None:
    """BadName unless ``name`` could be a file the agent serves."""
    if "/" in name or "\\" in name or name in ("", ".", ".."):
        raise BadName(f"{name!r:.80} is not a recording name: path parts are not allowed")
    if not SERVED_NAME.match(name):
        raise BadName(
            f"{name!r:.80} is not a recording name: expected letters, digits, '-' and '_' "
            "ending in .mp4, .json or .jpg"
        )


def _cap(db: Session, node_id: str, name: str) -> int:
    """The most bytes the relay takes for ``name`` from ``node_id``."""
    if name.endswith(".mp4"):
        row = repository.by_node_file(db, node_id, name)
        if row is not None:
            return row.size_bytes
    else:
        for row in recording_repository.by_node(db, node_id):
            m = row.manifest()
            if CAM_ID.match(m.cam_id) and name == f"{m.session_id}_{m.cam_id}.json":
                return MAX_SIDE_FILE_BYTES
            if m.lockview_file == name:
                return MAX_SIDE_FILE_BYTES
    raise RecordingNotFound(
        f"the coordinator knows no recording {name} on node {node_id}; GET /api/v1/recordings"
    )


def _address(fleet: Fleet, node_id: str) -> NodeAddress:
    if node_id not in fleet.nodes:
        raise NodeNotFound(f"no node {node_id}; GET /api/v1/nodes")
    addr = fleet.address(node_id)
    if addr is None:
        raise NodeUnreachable(f"node {node_id} has no known address (it waits for approval?)")
    return addr


def _raise_for(node_id: str, status: int | None, error: str) -> None:
    if status is None:
        raise NodeUnreachable(f"{node_id}: {error}")
    if status in (400, 404, 409, 416):
        raise NodeRefused(f"{node_id}: {error}", status)
    raise NodeUnreachable(f"{node_id} answered HTTP {status}: {error}")


async def download(fleet: Fleet, node_id: str, name: str, range_header: str | None) -> Response:
    """A node's file streamed through as it arrives, Range passed on; nothing is kept."""
    check_name(name)
    addr = _address(fleet, node_id)
    cap = await fleet.store.run(lambda db: _cap(db, node_id, name))
    if range_header is not None and not _RANGE_HEADER.match(range_header.strip()):
        range_header = None  # a malformed Range is ignored, as a server may
    stack = contextlib.AsyncExitStack()
    call = await stack.enter_async_context(
        fleet.client.download(
            addr,
            name,
            range_header=range_header,
            max_bytes=cap,
            idle_timeout_s=fleet.settings.offload_idle_timeout_s,
        )
    )
    if not call.ok or call.value is None:
        await stack.aclose()
        _raise_for(node_id, call.status_code, call.error or "failed")
    assert call.value is not None
    answer: StreamAnswer = call.value
    headers = {"Cache-Control": "no-store", "Accept-Ranges": "bytes"}
    for key in ("content-length", "content-range"):
        if key in answer.headers:
            headers[key.title()] = answer.headers[key]

    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.chunks():
                yield chunk
        except TransportError as err:
            # The head is out: the only way left to say so is to cut the answer short.
            raise ConnectionAbortedError(f"relay of {name} from {node_id}: {err}") from err
        finally:
            await stack.aclose()

    media = MEDIA[name.rsplit(".", 1)[1]]
    return StreamingResponse(body(), status_code=answer.status, media_type=media, headers=headers)


async def confirm(fleet: Fleet, node_id: str, name: str, req: ConfirmRequest) -> ConfirmResult:
    """A confirm passed to the node (for a copy a tool took straight from it)."""
    check_name(name)
    if not name.endswith(".mp4"):
        raise BadName(f"{name} is not a recording: only .mp4 files are confirmed")
    addr = _address(fleet, node_id)
    await fleet.store.run(lambda db: _cap(db, node_id, name))  # a recording it knows
    (call,) = await fleet.fanout.each(
        [addr], "confirm", lambda a: fleet.client.confirm(a, name, req)
    )
    if not call.ok or call.value is None:
        _raise_for(node_id, call.status_code, call.error or "failed")
    assert call.value is not None
    result = call.value
    if result.manifest.file_name == name:
        manifests = [result.manifest]
        await fleet.store.run(lambda db: recording_service.ingest(db, node_id, manifests))
    return result


async def delete_offloaded(fleet: Fleet, node_id: str | None) -> DeleteFleet:
    """Every node (or one) deletes the recordings it has confirmed copies of."""
    ids = [node_id] if node_id is not None else None
    nodes = await fleet.store.run(lambda db: node_service.addresses(db, fleet, ids))
    client = fleet.client
    calls = await fleet.fanout.each(
        nodes,
        "delete_offloaded",
        client.delete_offloaded,
        deadline_s=fleet.settings.command_timeout_s,
    )
    out = [
        DeleteNode(
            node_id=c.node_id,
            ok=c.ok,
            status_code=c.status_code,
            error=c.error,
            latency_ms=c.latency_ms,
            result=c.value,
        )
        for c in calls
    ]
    return DeleteFleet(
        nodes=out,
        freed_bytes=sum(n.result.freed_bytes for n in out if n.result is not None),
        deleted=sum(len(n.result.deleted) for n in out if n.result is not None),
    )
