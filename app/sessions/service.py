"""Synchronized sessions: schedule a start across the fleet, stop, collect manifests, skew.

Each command loads what it needs in one short database unit, talks to the nodes with no
database session open, and saves every node's result in another; a session it was
carrying out when something failed is left to ``reconcile`` to finish.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlmodel import Session

from app.context import Fleet
from app.errors import BadInput, SessionNotFound
from app.fleet.client import NodeAddress, NodeCall
from app.fleet.wire import LockViewRequest, Manifest, StartRequest, StopRequest
from app.nodes import repository as node_repository
from app.nodes import service as node_service
from app.recordings import repository as recording_repository
from app.recordings import service as recording_service
from app.sessions import beep, repository
from app.sessions.metadata import merge_metadata, metadata_of
from app.sessions.models import (
    FINAL_STATES,
    Command,
    CommandPublic,
    CommandResult,
    LockViewFleet,
    LockViewNode,
    NodeResult,
    RecordingSession,
    SessionCreate,
    SessionList,
    SessionPublic,
    SessionState,
    SessionUpdate,
)
from app.sessions.skew import compute_skew_bound_ms, compute_skew_ms, judge
from app.timeutil import iso

# The lead must cover the round trips seen (their p99 x lead_rtt_factor), plus this margin
# for the node to check its gates and arm.
RTT_LEAD_MARGIN_MS = 50
RTT_QUANTILE = 0.99


def new_session_id(now_ns: int) -> str:
    """``YYYYMMDD-HHMMSS-xxxx`` (UTC): sortable, and safe inside file names."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    return f"{stamp}-{secrets.token_hex(2)}"


def check_lead_ms(fleet: Fleet, requested: int | None) -> None:
    """A 422 for a requested lead outside ``min_lead_ms``..``max_lead_ms``."""
    s = fleet.settings
    if requested is not None and not s.min_lead_ms <= requested <= s.max_lead_ms:
        raise BadInput(
            f"lead_ms must be between {s.min_lead_ms} and {s.max_lead_ms} ms; got {requested}"
        )


def choose_lead_ms(
    fleet: Fleet,
    requested: int | None,
    round_trips: int = 1,
    node_ids: Sequence[str] | None = None,
) -> int:
    """The requested (or default) lead, raised to cover the round trips seen: at least
    ``round_trips`` x their p99 x ``lead_rtt_factor``, plus a margin for arming.

    ``round_trips`` counts the exchanges that must complete before ``start_at`` (2 when
    a readiness check and the beep command follow the start). Only the round trips of
    ``node_ids`` (the nodes being started; every node when None) within
    ``lead_rtt_window_s`` count, and they raise the lead to at most ``max_auto_lead_ms``:
    one node stopped for seconds a while ago must not make every later start wait that
    long (a node still that slow starts late and says so). The lead stays within
    ``max_lead_ms``.
    """
    check_lead_ms(fleet, requested)
    s = fleet.settings
    lead = requested if requested is not None else s.default_lead_ms
    p99 = fleet.state.rtt_quantile_ms(RTT_QUANTILE, node_ids, s.lead_rtt_window_s)
    floor = round(max(1, round_trips) * p99 * s.lead_rtt_factor + RTT_LEAD_MARGIN_MS)
    floor = min(floor, s.max_auto_lead_ms)
    return min(max(lead, floor), s.max_lead_ms)


def _record(
    session_id: str, command: Command, command_id: str, call: NodeCall[Any]
) -> CommandResult:
    return CommandResult(
        session_id=session_id,
        node_id=call.node_id,
        command=command.value,
        command_id=command_id,
        ok=call.ok,
        status_code=call.status_code,
        error=call.error[:2000] if call.error else None,
        latency_ms=call.latency_ms,
        created_at_ns=time.time_ns(),
    )


async def start(fleet: Fleet, body: SessionCreate) -> SessionPublic:
    """Schedule a start on every target node at once; healthy nodes go on when one fails."""
    check_lead_ms(fleet, body.lead_ms)
    nodes = await fleet.store.run(lambda db: node_service.addresses(db, fleet, body.node_ids))
    lead_ms = choose_lead_ms(
        fleet,
        body.lead_ms,
        round_trips=2 if beep.wanted(fleet, body) else 1,
        node_ids=[n.node_id for n in nodes],
    )

    sid = new_session_id(time.time_ns())

    def create(db: Session) -> RecordingSession:
        now = time.time_ns()
        session = RecordingSession(
            session_id=sid,
            name=body.name or "",
            metadata_json=json.dumps(body.metadata or {}, ensure_ascii=False),
            state=SessionState.starting.value,
            mode=body.mode,
            lead_ms=lead_ms,
            start_at_ns=now + lead_ms * 1_000_000,
            created_at_ns=now,
        )
        repository.save(db, session)
        return session

    # Commanding from before the row exists: the reconciler never sees it 'starting' and
    # free to settle (it once wrote that stale row back over a stop that had finished).
    with fleet.commanding(sid):
        session = await fleet.store.run(create)
        command_id = f"start-{sid}"
        req = StartRequest(
            session_id=sid,
            command_id=command_id,
            start_at_ns=session.start_at_ns,
            planned_duration_s=body.planned_duration_s,
        )
        calls = await fleet.fanout.each(nodes, "start", lambda a: fleet.client.start(a, req))
        rows = [_record(sid, Command.start, command_id, c) for c in calls]
        rows += await beep.after_start(fleet, body, session, nodes, calls, _record)
        session.state = (
            SessionState.recording.value if any(c.ok for c in calls) else SessionState.failed.value
        )
        stopped: list[tuple[str, Manifest]] = []
        if body.mode == "all_or_nothing" and not all(c.ok for c in calls):
            session.state = SessionState.aborted.value
            session.end_reason = "a node refused or failed the start (all_or_nothing)"
            armed = [a for a, c in zip(nodes, calls, strict=True) if c.ok]
            # A node whose start instant had already come has a short file: it is collected.
            more, stopped = await _stop_on(fleet, sid, armed, Command.abort)
            rows += more
        if session.state != SessionState.recording.value:
            session.stopped_at_ns = time.time_ns()

        def settle(fresh: RecordingSession) -> None:
            # A stop sent while the start was under way may have ended it: that stands.
            if fresh.state == SessionState.starting.value:
                fresh.state = session.state
                fresh.end_reason = session.end_reason
                fresh.stopped_at_ns = session.stopped_at_ns

        return await fleet.store.run(lambda db: _finish(db, sid, rows, stopped, settle))


def _finish(
    db: Session,
    session_id: str,
    rows: Sequence[CommandResult],
    manifests: Sequence[tuple[str, Manifest]],
    settle: Callable[[RecordingSession], None],
) -> SessionPublic:
    """Store manifests, then ``settle`` the session as read now, store the command
    results, recompute the skew, and answer the session.

    The manifests go first: an insert that loses its race with the poller's sweep rolls
    the unit back, and once undid a stop's 'stopped' set before it (the session answered
    'recording' to its own stop).
    """
    for node_id, manifest in manifests:
        recording_service.ingest(db, node_id, [manifest])
    session = _get(db, session_id)
    settle(session)
    if session.state not in (SessionState.starting.value, SessionState.recording.value):
        recordings = recording_repository.by_session(db, session.session_id)
        session.skew_ms = compute_skew_ms(recordings)
        session.skew_bound_ms = compute_skew_bound_ms(recordings)
    repository.save(db, session, *rows)
    return to_public(db, session)


async def _stop_on(
    fleet: Fleet, session_id: str, nodes: list[NodeAddress], command: Command
) -> tuple[list[CommandResult], list[tuple[str, Manifest]]]:
    """Stop (or abort) the session on ``nodes`` at once; results and finished manifests."""
    if not nodes:
        return [], []
    command_id = f"{command.value}-{session_id}-{secrets.token_hex(3)}"
    req = StopRequest(session_id=session_id, command_id=command_id)
    timeout = fleet.settings.stop_timeout_s
    calls = await fleet.fanout.each(
        nodes, command.value, lambda a: fleet.client.stop(a, req, timeout), deadline_s=timeout
    )
    rows = [_record(session_id, command, command_id, c) for c in calls]
    # A manifest is stored for the node that answered with it, and only if it says so.
    manifests = [
        (c.node_id, c.value.manifest)
        for c in calls
        if c.value is not None
        and c.value.manifest is not None
        and c.value.manifest.node_id == c.node_id
    ]
    return rows, manifests


def _started_ids(results: Sequence[CommandResult]) -> list[str]:
    """The nodes that took the session's start."""
    return sorted({r.node_id for r in results if r.command == Command.start and r.ok})


def _stopped_ids(results: Sequence[CommandResult]) -> set[str]:
    return {r.node_id for r in results if r.command in (Command.stop, Command.abort) and r.ok}


async def stop(fleet: Fleet, session_id: str) -> SessionPublic:
    """Stop the session on every node that started it and collect the manifests."""

    def load(db: Session) -> tuple[list[str], set[str]]:
        _get(db, session_id)  # NotFound before anything is sent
        results = repository.results(db, [session_id])
        return _started_ids(results), _stopped_ids(results)

    with fleet.commanding(session_id):
        started, stopped = await fleet.store.run(load)
        pending = [a for n in started if n not in stopped and (a := fleet.address(n)) is not None]
        rows, finished = await _stop_on(fleet, session_id, pending, Command.stop)

        def settle(db: Session, fresh: RecordingSession) -> None:
            # Read the session and its results again: a concurrent stop may have finished
            # meanwhile, and this one must not save the session back to 'stopping'.
            if fresh.state not in FINAL_STATES:
                done = set(started) <= _stopped_ids([*repository.results(db, [session_id]), *rows])
                fresh.state = (SessionState.stopped if done else SessionState.stopping).value
            fresh.stopped_at_ns = fresh.stopped_at_ns or time.time_ns()

        return await fleet.store.run(
            lambda db: _finish(db, session_id, rows, finished, lambda s: settle(db, s))
        )


def _get(db: Session, session_id: str) -> RecordingSession:
    session = repository.get(db, session_id)
    if session is None:
        raise SessionNotFound(
            f"no session {session_id!r}; GET /api/v1/sessions lists the recent ones"
        )
    return session


async def get(fleet: Fleet, session_id: str) -> SessionPublic:
    """One session with its per-node results."""
    return await fleet.store.run(lambda db: to_public(db, _get(db, session_id)))


async def list_recent(fleet: Fleet, limit: int, offset: int = 0) -> SessionList:
    """The newest sessions first (after the ``offset`` newest), and how many there are."""

    def tx(db: Session) -> SessionList:
        rows = repository.list_recent(db, limit, offset)
        return SessionList(
            sessions=[to_public(db, s) for s in rows], total=repository.count(db), offset=offset
        )

    return await fleet.store.run(tx)


async def edit(fleet: Fleet, session_id: str, body: SessionUpdate) -> SessionPublic:
    """Change a session's name or notes, at any point of its life; the time is recorded."""
    sent = body.model_fields_set & {"name", "metadata"}
    if not sent or (sent == {"metadata"} and body.metadata is None):
        raise BadInput(
            "nothing to change: send name and/or metadata",
            [{"field": "body", "message": "send name and/or metadata"}],
        )

    def tx(db: Session) -> SessionPublic:
        session = _get(db, session_id)
        if "name" in sent:
            session.name = body.name
        if body.metadata is not None:
            merged = merge_metadata(metadata_of(session), body.metadata)
            session.metadata_json = json.dumps(merged, ensure_ascii=False)
        session.edited_at_ns = time.time_ns()
        repository.save(db, session)
        return to_public(db, session)

    return await fleet.store.run(tx)


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
    by_command: dict[str, dict[str, CommandResult]] = {c.value: {} for c in Command}
    for row in repository.results(db, [session.session_id]):
        by_command.setdefault(row.command, {})[row.node_id] = row
    starts, stops, aborts, beeps = (
        by_command[c.value] for c in (Command.start, Command.stop, Command.abort, Command.beep)
    )
    recordings = recording_repository.by_session(db, session.session_id)
    recs = {r.node_id: r for r in recordings}
    manifests = {r.node_id: r.manifest() for r in recordings}
    ids = sorted(set(starts) | set(recs))
    registry = node_repository.get_many(db, ids)
    nodes = []
    for node_id in ids:
        rec = recs.get(node_id)
        node = registry.get(node_id)
        nodes.append(
            NodeResult(
                node_id=node_id,
                cam_id=rec.cam_id if rec else (node.cam_id if node else None),
                start=_command(starts.get(node_id)),
                stop=_command(stops.get(node_id)),
                abort=_command(aborts.get(node_id)),
                beep=_command(beeps.get(node_id)),
                file_name=rec.file_name if rec else None,
                sha256=rec.sha256 if rec else None,
                first_frame_ns=rec.first_frame_ns if rec else None,
                clock_offset_ns=rec.clock_offset_ns if rec else None,
                clock_synchronized=rec.clock_synchronized if rec else None,
                clock_error_bound_ns=rec.clock_error_bound_ns if rec else None,
                clock_reference=rec.clock_reference if rec else None,
                start_late_ns=manifests[node_id].start_late_ns if rec else None,
                corrected_first_frame_ns=(rec.first_frame_ns - (rec.clock_offset_ns or 0))
                if rec
                else None,
                frame_count=rec.frame_count if rec else None,
                dropped_frames=rec.dropped_frames if rec else None,
                recording_id=rec.id if rec else None,
                size_bytes=rec.size_bytes if rec else None,
                archive_state=rec.archive_state if rec else None,
            )
        )
    verdict = judge(
        recordings, [m.fps for m in manifests.values()], session.skew_ms, session.skew_bound_ms
    )
    start_at = iso(session.start_at_ns)
    created = iso(session.created_at_ns)
    assert start_at is not None and created is not None
    return SessionPublic(
        session_id=session.session_id,
        name=session.name,
        metadata=metadata_of(session),
        edited_at=iso(session.edited_at_ns),
        state=SessionState(session.state),
        end_reason=session.end_reason,
        mode=session.mode,
        lead_ms=session.lead_ms,
        start_at=start_at,
        start_at_ns=session.start_at_ns,
        created_at=created,
        stopped_at=iso(session.stopped_at_ns),
        skew_ms=session.skew_ms,
        skew_bound_ms=session.skew_bound_ms,
        frame_period_ms=verdict.frame_period_ms,
        skew_warnings=verdict.warnings,
        nodes=nodes,
    )


async def lockview(fleet: Fleet, session_id: str) -> LockViewFleet:
    """Save the session's framing still on every node that started it."""

    def load(db: Session) -> list[str]:
        _get(db, session_id)
        return _started_ids(repository.results(db, [session_id]))

    started = await fleet.store.run(load)
    nodes = [a for n in started if (a := fleet.address(n)) is not None]
    req = LockViewRequest(session_id=session_id)
    calls = await fleet.fanout.each(nodes, "lockview", lambda a: fleet.client.lockview(a, req))
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
