"""Synchronized sessions: schedule a start across the fleet, stop, collect manifests, skew."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session

from app.context import Fleet
from app.errors import BadInput, SessionNotFound
from app.fleet.client import NodeAddress, NodeCall
from app.fleet.wire import LockViewRequest, StartRequest, StopRequest
from app.nodes import repository as node_repository
from app.nodes import service as node_service
from app.recordings import repository as recording_repository
from app.recordings import service as recording_service
from app.recordings.models import Recording
from app.sessions import repository
from app.sessions.models import (
    CommandPublic,
    CommandResult,
    LockViewFleet,
    LockViewNode,
    NodeResult,
    RecordingSession,
    SessionCreate,
    SessionList,
    SessionPublic,
)
from app.timeutil import iso

# The lead must cover the slowest round trip seen, with room to spare.
RTT_LEAD_FACTOR = 3
RTT_LEAD_MARGIN_MS = 50


def new_session_id(now_ns: int) -> str:
    """``YYYYMMDD-HHMMSS-xxxx`` (UTC): sortable, and safe inside file names."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    return f"{stamp}-{secrets.token_hex(2)}"


def choose_lead_ms(fleet: Fleet, requested: int | None) -> int:
    """The requested (or default) lead, raised above the worst round trip seen."""
    s = fleet.settings
    if requested is not None and not s.min_lead_ms <= requested <= s.max_lead_ms:
        raise BadInput(
            f"lead_ms must be between {s.min_lead_ms} and {s.max_lead_ms} ms; got {requested}"
        )
    lead = requested if requested is not None else s.default_lead_ms
    floor = round(fleet.state.worst_rtt_ms() * RTT_LEAD_FACTOR + RTT_LEAD_MARGIN_MS)
    return min(max(lead, floor), s.max_lead_ms)


def _record(session_id: str, command: str, command_id: str, call: NodeCall[Any]) -> CommandResult:
    return CommandResult(
        session_id=session_id,
        node_id=call.node_id,
        command=command,
        command_id=command_id,
        ok=call.ok,
        status_code=call.status_code,
        error=call.error,
        latency_ms=call.latency_ms,
        created_at_ns=time.time_ns(),
    )


def _note_calls(fleet: Fleet, calls: Sequence[NodeCall[Any]], rtt: bool) -> None:
    # Start round trips (which include arming) feed the lead choice; stops do not.
    for call in calls:
        if call.status_code is not None:
            fleet.state.contact(call.node_id, call.latency_ms if rtt else None)
        else:
            fleet.state.failure(call.node_id, call.error or "unreachable")


async def start(db: Session, fleet: Fleet, body: SessionCreate) -> SessionPublic:
    """Schedule a start on every target node at once; healthy nodes go on when one fails."""
    nodes = node_service.addresses(db, fleet, body.node_ids)
    lead_ms = choose_lead_ms(fleet, body.lead_ms)
    now = time.time_ns()
    session = RecordingSession(
        session_id=new_session_id(now),
        name=body.name or "",
        state="starting",
        mode=body.mode,
        lead_ms=lead_ms,
        start_at_ns=now + lead_ms * 1_000_000,
        created_at_ns=now,
    )
    repository.save(db, session)
    command_id = f"start-{session.session_id}"
    req = StartRequest(
        session_id=session.session_id,
        command_id=command_id,
        start_at_ns=session.start_at_ns,
        planned_duration_s=body.planned_duration_s,
    )
    calls = await fleet.client.fan_out(nodes, lambda a: fleet.client.start(a, req))
    _note_calls(fleet, calls, rtt=True)
    rows = [_record(session.session_id, "start", command_id, c) for c in calls]
    session.state = "recording" if any(c.ok for c in calls) else "failed"
    if body.mode == "all_or_nothing" and not all(c.ok for c in calls):
        rows += await _abort(
            db, fleet, session, [a for a, c in zip(nodes, calls, strict=True) if c.ok]
        )
    fleet.poller.refresh_soon([c.node_id for c in calls if c.ok])
    repository.save(db, session, *rows)
    return to_public(db, session)


async def _abort(
    db: Session, fleet: Fleet, session: RecordingSession, armed: list[NodeAddress]
) -> list[CommandResult]:
    """Cancel the start on the nodes that took it (all_or_nothing and another failed)."""
    session.state = "aborted"
    session.stopped_at_ns = time.time_ns()
    if not armed:
        return []
    # A node whose start instant had already come has a short file: it is collected too.
    return await _stop_on(db, fleet, session.session_id, armed, "abort")


async def _stop_on(
    db: Session, fleet: Fleet, session_id: str, nodes: list[NodeAddress], command: str
) -> list[CommandResult]:
    """Stop (or abort) the session on ``nodes`` at once and collect their manifests."""
    command_id = f"{command}-{session_id}-{secrets.token_hex(3)}"
    req = StopRequest(session_id=session_id, command_id=command_id)
    timeout = fleet.settings.stop_timeout_s
    calls = await fleet.client.fan_out(nodes, lambda a: fleet.client.stop(a, req, timeout))
    _note_calls(fleet, calls, rtt=False)
    for call in calls:
        if call.ok and call.value is not None and call.value.manifest is not None:
            recording_service.ingest(db, call.node_id, [call.value.manifest])
    return [_record(session_id, command, command_id, c) for c in calls]


def _started(db: Session, fleet: Fleet, session_id: str) -> list[NodeAddress]:
    """The nodes that took the session's start."""
    results = repository.results(db, [session_id])
    ids = sorted({r.node_id for r in results if r.command == "start" and r.ok})
    return [a for n in ids if (a := fleet.address(n)) is not None]


async def stop(db: Session, fleet: Fleet, session_id: str) -> SessionPublic:
    """Stop the session on every node that started it and collect the manifests."""
    session = _get(db, session_id)
    started = _started(db, fleet, session_id)
    results = repository.results(db, [session_id])
    stopped = {r.node_id for r in results if r.command in ("stop", "abort") and r.ok}
    pending = [a for a in started if a.node_id not in stopped]
    if pending:
        rows = await _stop_on(db, fleet, session_id, pending, "stop")
        fleet.poller.refresh_soon([r.node_id for r in rows if r.ok])
        stopped |= {r.node_id for r in rows if r.ok}
        repository.save(db, *rows)
    if session.state not in ("failed", "aborted"):
        session.state = "stopped" if {a.node_id for a in started} <= stopped else "stopping"
    session.stopped_at_ns = session.stopped_at_ns or time.time_ns()
    session.skew_ms = compute_skew_ms(recording_repository.by_session(db, session_id))
    repository.save(db, session)
    return to_public(db, session)


def compute_skew_ms(recordings: Sequence[Recording]) -> float | None:
    """Spread of first-frame times, each corrected by its node's clock offset."""
    corrected = [r.first_frame_ns - (r.clock_offset_ns or 0) for r in recordings]
    if len(corrected) < 2:
        return 0.0 if corrected else None
    return round((max(corrected) - min(corrected)) / 1e6, 4)


def _get(db: Session, session_id: str) -> RecordingSession:
    session = repository.get(db, session_id)
    if session is None:
        raise SessionNotFound(
            f"no session {session_id!r}; GET /api/v1/sessions lists the recent ones"
        )
    return session


def get(db: Session, session_id: str) -> SessionPublic:
    """One session with its per-node results."""
    return to_public(db, _get(db, session_id))


def list_recent(db: Session, limit: int) -> SessionList:
    """The newest sessions first."""
    return SessionList(sessions=[to_public(db, s) for s in repository.list_recent(db, limit)])


def _command(row: CommandResult | None) -> CommandPublic | None:
    if row is None:
        return None
    return CommandPublic(
        command_id=row.command_id,
        ok=row.ok,
        status_code=row.status_code,
        error=row.error,
        latency_ms=row.latency_ms,
        at=iso(row.created_at_ns),
    )


def to_public(db: Session, session: RecordingSession) -> SessionPublic:
    """The session with one entry per node: its commands and its manifest."""
    by_command: dict[str, dict[str, CommandResult]] = {"start": {}, "stop": {}, "abort": {}}
    for row in repository.results(db, [session.session_id]):
        by_command.setdefault(row.command, {})[row.node_id] = row
    starts, stops, aborts = by_command["start"], by_command["stop"], by_command["abort"]
    recs = {r.node_id: r for r in recording_repository.by_session(db, session.session_id)}
    nodes = []
    for node_id in sorted(set(starts) | set(recs)):
        rec = recs.get(node_id)
        node = node_repository.get(db, node_id)
        nodes.append(
            NodeResult(
                node_id=node_id,
                cam_id=rec.cam_id if rec else (node.cam_id if node else None),
                start=_command(starts.get(node_id)),
                stop=_command(stops.get(node_id)),
                abort=_command(aborts.get(node_id)),
                file_name=rec.file_name if rec else None,
                sha256=rec.sha256 if rec else None,
                first_frame_ns=rec.first_frame_ns if rec else None,
                clock_offset_ns=rec.clock_offset_ns if rec else None,
                clock_synchronized=rec.clock_synchronized if rec else None,
                corrected_first_frame_ns=(rec.first_frame_ns - (rec.clock_offset_ns or 0))
                if rec
                else None,
                frame_count=rec.frame_count if rec else None,
                dropped_frames=rec.dropped_frames if rec else None,
            )
        )
    start_at = iso(session.start_at_ns)
    created = iso(session.created_at_ns)
    assert start_at is not None and created is not None
    return SessionPublic(
        session_id=session.session_id,
        name=session.name,
        state=session.state,
        mode=session.mode,
        lead_ms=session.lead_ms,
        start_at=start_at,
        start_at_ns=session.start_at_ns,
        created_at=created,
        stopped_at=iso(session.stopped_at_ns),
        skew_ms=session.skew_ms,
        nodes=nodes,
    )


async def lockview(db: Session, fleet: Fleet, session_id: str) -> LockViewFleet:
    """Save the session's framing still on every node that started it."""
    _get(db, session_id)
    nodes = _started(db, fleet, session_id)
    req = LockViewRequest(session_id=session_id)
    calls = await fleet.client.fan_out(nodes, lambda a: fleet.client.lockview(a, req))
    _note_calls(fleet, calls, rtt=False)
    return LockViewFleet(
        session_id=session_id,
        nodes=[
            LockViewNode(
                node_id=c.node_id,
                ok=c.ok,
                status_code=c.status_code,
                error=c.error,
                latency_ms=c.latency_ms,
                file_name=c.value.file_name if c.value else None,
                size_bytes=c.value.size_bytes if c.value else None,
            )
            for c in calls
        ],
    )
