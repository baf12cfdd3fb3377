"""Fleet time and this node's clock: the one conversion every scheduled instant goes through.

A start instant (``start_at_ns``, a beep's ``at_ns``) is in fleet time, the master's clock.
chrony's offset is local minus reference, so the local clock reads ``fleet + offset`` at a
fleet instant. On a clock chrony steers the offset is what is still being slewed away; on
one it does not steer (``chronyd -x``) it is the whole difference. Either way adding it is
right, as long as the reading is synchronised.
"""

from __future__ import annotations

from node_agent.schemas import ClockStatus


def offset_to_apply(clock: ClockStatus, correct: bool) -> int:
    """The offset (ns) a conversion applies: 0 unless correcting a synchronised reading."""
    if not correct or not clock.synchronized or clock.offset_ns is None:
        return 0
    return clock.offset_ns


def to_local_ns(fleet_ns: int, clock: ClockStatus, correct: bool = True) -> int:
    """The local clock's reading at the fleet instant ``fleet_ns``."""
    return fleet_ns + offset_to_apply(clock, correct)


def to_fleet_ns(local_ns: int, clock: ClockStatus, correct: bool = True) -> int:
    """The fleet instant at which the local clock reads ``local_ns``."""
    return local_ns - offset_to_apply(clock, correct)
