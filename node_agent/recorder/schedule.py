"""Waiting for a scheduled start: sleep until shortly before, then spin.

``asyncio.sleep`` wakes about 0.3 ms late at the median and 3 ms at p99; a sleep to
2 ms before the deadline followed by a spin on the clock lands within tens of µs.

For the last 50 ms the thread asks for SCHED_FIFO when it may (root, or the agent's
systemd unit grants ``LimitRTPRIO``): a real-time thread is not pushed aside by
ordinary work, such as another camera process that has already started encoding on
the same core. The start instant is read before the thread drops back to normal
priority.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from dataclasses import dataclass

SPIN_NS = 2_000_000
# Under SCHED_FIFO a sleep wakes within tens of µs (no timer slack), so the spin is short.
SPIN_NS_REALTIME = 1_000_000
SWITCH_INTERVAL_S = 0.0001
# The thread turns real-time this long before the deadline, while it still sleeps.
REALTIME_LEAD_NS = 50_000_000
# Far below the kernel's own real-time threads (which run at 50 and above).
REALTIME_PRIORITY = 10
# A spin that outlasts this (the wall clock was stepped back meanwhile) gives up its
# real-time priority rather than hold a core.
MAX_REALTIME_SPIN_NS = 20_000_000


@dataclass(frozen=True)
class Fired:
    """The instant a scheduled start fired, on both clocks."""

    wall_ns: int
    monotonic_ns: int
    realtime: bool  # whether the last stretch ran under SCHED_FIFO


def _enter_realtime() -> bool:
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(REALTIME_PRIORITY))
    except (OSError, AttributeError):  # not permitted (EPERM) or not Linux
        return False
    return True


def _leave_realtime() -> None:
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _sleep_until(deadline_ns: int, margin_ns: int, cancel: threading.Event) -> bool:
    """Sleep until ``margin_ns`` before the deadline; False when cancelled."""
    while True:
        remaining = deadline_ns - time.time_ns()
        if remaining <= margin_ns:
            return True
        # Re-check the clock after each wait: the wall clock may be slewed meanwhile.
        if cancel.wait(min((remaining - margin_ns) / 1e9, 0.5)):
            return False


def wait_until_ns(deadline_ns: int, cancel: threading.Event) -> Fired | None:
    """Block until ``time.time_ns() >= deadline_ns``; None when ``cancel`` is set first."""
    if not _sleep_until(deadline_ns, REALTIME_LEAD_NS, cancel):
        return None
    # Real-time from here on, sleep included: threads that are still ordinary when others
    # start spinning would not get a core back until the spinners are done.
    realtime = _enter_realtime()
    # Another thread of this process holding the GIL when this one wakes would delay it by
    # up to the switch interval (5 ms): shorten that for the last stretch.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    try:
        if not _sleep_until(deadline_ns, SPIN_NS_REALTIME if realtime else SPIN_NS, cancel):
            return None
        give_up = time.monotonic_ns() + MAX_REALTIME_SPIN_NS
        while (now := time.time_ns()) < deadline_ns:
            if not realtime:
                # An ordinary thread lets its peers (other cameras on a crowded machine) look
                # at the clock too. A real-time one keeps its core and the GIL (yielding lets
                # another thread take the GIL for a while): real-time peers waiting for the
                # same instant run the moment it fires, tens of µs apart.
                os.sched_yield()
            elif time.monotonic_ns() > give_up:
                _leave_realtime()
                realtime = False
        fired = Fired(now, time.monotonic_ns(), realtime)
    finally:
        sys.setswitchinterval(switch)
        if realtime:
            _leave_realtime()
    return None if cancel.is_set() else fired
