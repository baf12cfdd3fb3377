"""A scheduled start on this node's clock: the local deadline of a fleet instant, lateness,
and the clock's error bound at the moment the recording began.

``start_at_ns`` in a start command is fleet time (the sync master's clock). The local
deadline is the reading this node's clock shows at that instant: ``to_local_ns`` adds the
measured offset, which matters most where chrony does not steer the clock (``chronyd
-x``), where the offset is the whole difference. Pure functions; the recorder applies them.
"""

from __future__ import annotations

from dataclasses import dataclass

from node_agent.schemas import ClockStatus
from node_agent.sync.fleettime import offset_to_apply, to_local_ns


@dataclass(frozen=True)
class StartPlan:
    """When this node starts a recording, on its own clock."""

    requested_ns: int | None  # the fleet instant the command asked for (None: now)
    deadline_ns: int  # the local clock's reading at that instant (now when not scheduled)
    start_at_ns: int  # when the recorder begins: the deadline, or now if it has passed
    offset_applied_ns: int  # what the conversion added (0 when not correcting)

    def late_ns(self, armed_at_ns: int) -> int:
        """How far past its deadline a recording armed at ``armed_at_ns`` is (0 on time)."""
        if self.requested_ns is None:
            return 0
        return max(0, armed_at_ns - self.deadline_ns)


def plan_start(
    requested_ns: int | None, now_ns: int, clock: ClockStatus, correct: bool
) -> StartPlan:
    """The local deadline of ``requested_ns`` (fleet time) under the latest clock reading."""
    if requested_ns is None:
        return StartPlan(None, now_ns, now_ns, 0)
    deadline = to_local_ns(requested_ns, clock, correct)
    return StartPlan(requested_ns, deadline, max(deadline, now_ns), offset_to_apply(clock, correct))


def late_warning(late_ns: int) -> str:
    """What a start that armed after its instant says about it."""
    return (
        f"start: armed {late_ns / 1e6:.1f} ms after the scheduled instant; the recording "
        "began at once, late by that much (raise the session's lead_ms)"
    )


def bound_at_ns(clock: ClockStatus, at_ns: int) -> int | None:
    """The clock's error bound at local instant ``at_ns``: chrony's bound when it was read,
    widened by what the clock may have drifted since (reading age x (|frequency| + skew)).

    On a clock chrony does not steer the frequency error runs free between readings; on a
    steered one it is mostly corrected, so this over-covers it, never under-covers.
    """
    if clock.error_bound_ns is None:
        return None
    if clock.read_at_ns is None or at_ns <= clock.read_at_ns:
        return clock.error_bound_ns
    ppm = abs(clock.frequency_ppm or 0.0) + abs(clock.skew_ppm or 0.0)
    return clock.error_bound_ns + round((at_ns - clock.read_at_ns) * ppm / 1e6)
