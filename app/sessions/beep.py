"""The start beep: after the cross-node readiness check, the start tone on the beep cameras.

Only when every node the start went to answered it (armed, or already recording) is the
beep sent, to the nodes whose cam_id is in ``settings.beep_cams``; each plays the tone at
``start_at`` on its own clock. One beep per start: the command id is derived from the
session, and the nodes answer a repeated command id as they did the first time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.context import Fleet
from app.fleet.client import NodeAddress, NodeCall
from app.fleet.wire import BeepRequest, BeepResult
from app.sessions.models import Command, CommandResult, RecordingSession, SessionCreate

Record = Callable[[str, Command, str, NodeCall[Any]], CommandResult]


def wanted(fleet: Fleet, body: SessionCreate) -> bool:
    """Whether this start plays the beep (the body's choice, else the setting)."""
    return fleet.settings.beep if body.beep is None else body.beep


def targets(fleet: Fleet, nodes: Sequence[NodeAddress]) -> list[NodeAddress]:
    """The started nodes whose camera is one of ``settings.beep_cams``."""
    cams = set(fleet.settings.beep_cams)
    return [n for n in nodes if fleet.state.cam_ids.get(n.node_id) in cams]


async def after_start(
    fleet: Fleet,
    body: SessionCreate,
    session: RecordingSession,
    nodes: Sequence[NodeAddress],
    calls: Sequence[NodeCall[Any]],
    record: Record,
) -> list[CommandResult]:
    """Send the beep when every node armed; the beep's results (none when not sent). A
    node that answered but did not schedule the tone (tones off, instant passed) is a
    failed row with its reason."""
    if not wanted(fleet, body) or not calls or not all(c.ok for c in calls):
        return []
    to = targets(fleet, nodes)
    if not to:
        return []
    sid = session.session_id
    command_id = f"beep-{sid}"
    req = BeepRequest(session_id=sid, command_id=command_id, at_ns=session.start_at_ns)
    beeps = await fleet.fanout.each(to, Command.beep.value, lambda a: fleet.client.beep(a, req))
    rows = []
    for call in beeps:
        row = record(sid, Command.beep, command_id, call)
        result: BeepResult | None = call.value
        if result is not None and not result.scheduled:
            row.ok, row.error = False, result.reason or "the node did not schedule the beep"
        rows.append(row)
    return rows
