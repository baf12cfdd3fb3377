"""When to capture: pure functions on integer nanoseconds.

Slot ``n`` of a run is due at ``t0 + n * interval`` on the monotonic clock, so the
time a capture takes never pushes the next one later (the research's drift-corrected
sleep, without its cumulative error). A slot whose time passed more than ``grace``
ago (the camera was failing, or a capture overran) is missed, not caught up.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class Slot:
    """The next capture: slot ``index`` due at ``at_ns``; ``missed`` slots were passed over."""

    index: int
    at_ns: int
    missed: int


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def next_capture_time(
    t0_ns: int, interval_ns: int, now_ns: int, after: int = -1, grace_ns: int = 0
) -> Slot:
    """The first slot after slot ``after`` that is not yet ``grace_ns`` overdue at ``now_ns``.

    Slot ``k`` is due at ``t0_ns + k * interval_ns``. With ``after = -1`` and ``now_ns =
    t0_ns`` this is slot 0, due at once.
    """
    if interval_ns <= 0:
        raise ValueError("interval_ns must be positive")
    if grace_ns < 0:
        raise ValueError("grace_ns must not be negative")
    first = after + 1
    # The earliest k with t0 + k*interval >= now - grace.
    index = max(first, _ceil_div(now_ns - grace_ns - t0_ns, interval_ns))
    return Slot(index=index, at_ns=t0_ns + index * interval_ns, missed=index - first)


def seconds_to_ns(seconds: float) -> int:
    """Seconds as integer nanoseconds."""
    return round(seconds * NS_PER_S)
