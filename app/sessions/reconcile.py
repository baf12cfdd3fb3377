"""Sessions survive crashes: an unfinished session is settled with what its nodes report.

Run when the coordinator starts and after every status sweep. A session not in a final
state (and not being commanded right now) is compared with the cached, fresh status of
its nodes: while any node records it, it stays (a ``starting`` one becomes
``recording``); a node that no longer records it has its manifests collected; when no
node records it any more, the session ends with why (``coordinator restarted``,
``agents stopped``, ``nodes unreachable``) and its skew. Nodes that cannot be reached
hold the session open until they have been silent for ``stale_session_after_s``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from sqlmodel import Session

from app.context import Fleet
from app.fleet.wire import RecorderState
from app.recordings import repository as recording_repository
from app.sessions import repository
from app.sessions.models import Command, RecordingSession, SessionState
from app.sessions.skew import compute_skew_ms

log = logging.getLogger(__name__)

_ACTIVE = (RecorderState.armed, RecorderState.recording, RecorderState.stopping)


@dataclass
class _Open:
    session: RecordingSession
    started: list[str]
    stopped: set[str]


def _load(db: Session) -> list[_Open]:
    sessions = repository.unfinished(db)
    results = repository.results(db, [s.session_id for s in sessions])
    out = []
    for s in sessions:
        mine = [r for r in results if r.session_id == s.session_id]
        started = sorted({r.node_id for r in mine if r.command == Command.start and r.ok})
        stopped = {r.node_id for r in mine if r.command in (Command.stop, Command.abort) and r.ok}
        out.append(_Open(s, started, stopped))
    return out


def mark_restarted(fleet: Fleet) -> int:
    """At start: remember which sessions a previous run of the coordinator left open."""
    open_ = fleet.store.run_sync(repository.unfinished)
    fleet.restarted_sessions |= {s.session_id for s in open_}
    return len(open_)


async def reconcile(fleet: Fleet) -> None:
    """Settle every unfinished session that no command is working on."""
    pending = [
        o for o in await fleet.store.run(_load) if o.session.session_id not in fleet.busy_sessions
    ]
    for item in pending:
        try:
            await _settle(fleet, item)
        except Exception:  # one bad session must not keep the others open
            log.exception("reconciling session %s failed", item.session.session_id)


async def _settle(fleet: Fleet, item: _Open) -> None:
    session = item.session
    sid = session.session_id
    now = time.time_ns()
    if now < session.start_at_ns:
        return  # its start has not come yet
    max_age = max(3 * fleet.settings.poll_interval_s, 2.0)
    stale_ns = fleet.settings.stale_session_after_s * 1e9
    recording: list[str] = []
    idle: list[str] = []
    silent: list[str] = []
    gone: list[str] = []
    candidates = set(item.started) - item.stopped
    # A start that was cut short leaves no results: any node that shows the session counts.
    for node_id in fleet.state.addresses:
        status = fleet.state.fresh_status(node_id, max_age)
        if status is not None and status.recorder.session_id == sid:
            candidates.add(node_id)
    for node_id in sorted(candidates):
        status = fleet.state.fresh_status(node_id, max_age)
        if status is None:
            entry = fleet.state.cache.get(node_id)
            last = entry.last_contact_ns if entry else None
            long_silent = last is None or now - last > stale_ns
            if long_silent and now - session.created_at_ns > stale_ns:
                gone.append(node_id)  # as far as this session goes
            else:
                silent.append(node_id)
        elif status.recorder.session_id == sid and status.recorder.state in _ACTIVE:
            recording.append(node_id)
        else:
            idle.append(node_id)
    if recording:
        if session.state == SessionState.starting.value and sid not in fleet.busy_sessions:
            # Never the whole row loaded earlier: a stop may have ended it since.
            await fleet.store.run(
                lambda db: repository.advance(
                    db, sid, SessionState.starting.value, SessionState.recording.value
                )
            )
        return
    if silent:
        return
    # Nobody records it any more: collect what the idle nodes finished, then end it.
    for node_id in idle:
        addr = fleet.address(node_id)
        if addr is not None:
            await fleet.poller.poll_node(addr, manifests=True)
    took_start = bool(item.started or idle or gone)
    if sid in fleet.restarted_sessions:
        reason = "coordinator restarted"
    elif idle:
        reason = "agents stopped"
    elif gone:
        reason = "nodes unreachable"
    else:
        reason = "no node took the start"

    def end(db: Session) -> None:
        fresh = repository.get(db, sid)
        if fresh is None or fresh.state not in ("starting", "recording", "stopping"):
            return  # a command settled it meanwhile
        fresh.state = (SessionState.stopped if took_start else SessionState.failed).value
        fresh.end_reason = reason
        fresh.stopped_at_ns = fresh.stopped_at_ns or time.time_ns()
        fresh.skew_ms = compute_skew_ms(recording_repository.by_session(db, sid))
        repository.save(db, fresh)

    if sid in fleet.busy_sessions:
        return
    await fleet.store.run(end)
    fleet.restarted_sessions.discard(sid)
    log.info("session %s ended: %s", sid, reason)
