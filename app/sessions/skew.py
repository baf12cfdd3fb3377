"""Start skew and its bound: the spread of first-frame times, each corrected by its node's
clock offset, and how large an error the clocks' own bounds allow in that spread.

A node's ``clock_error_bound_ns`` (|offset| + root dispersion + root delay / 2) bounds its
clock's distance from the fleet's time. The skew is computed after subtracting each
measured offset, so what is left of a node's error is its bound without |offset|; two
nodes can be off in opposite directions, so the worst pairwise error is the sum of the two
largest of those. A skew or bound over one frame period means the files cannot be cut
together frame for frame on the clocks alone: the session warns.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlmodel import Session

from app.recordings import repository as recording_repository
from app.recordings.models import Recording
from app.sessions import repository as session_repository
from app.sessions.models import FINAL_STATES


def compute_skew_ms(recordings: Sequence[Recording]) -> float | None:
    """Spread of first-frame times, each corrected by its node's clock offset."""
    corrected = [r.first_frame_ns - (r.clock_offset_ns or 0) for r in recordings]
    if len(corrected) < 2:
        return 0.0 if corrected else None
    return round((max(corrected) - min(corrected)) / 1e6, 4)


def corrected_bound_ns(r: Recording) -> int | None:
    """A recording's clock bound once its offset has been corrected (never below 0)."""
    if r.clock_error_bound_ns is None:
        return None
    return max(0, r.clock_error_bound_ns - abs(r.clock_offset_ns or 0))


def compute_skew_bound_ms(recordings: Sequence[Recording]) -> float | None:
    """The worst pairwise error the clocks allow: the sum of the two largest corrected
    bounds; 0 for one recording, None when there is none or a bound is unknown."""
    if len(recordings) < 2:
        return 0.0 if recordings else None
    bounds = [corrected_bound_ns(r) for r in recordings]
    known = sorted((b for b in bounds if b is not None), reverse=True)
    if len(known) < len(bounds):
        return None
    return round((known[0] + known[1]) / 1e6, 4)


@dataclass(frozen=True)
class SkewVerdict:
    """What a session's skew figures say against one frame period."""

    frame_period_ms: float | None
    warnings: list[str]


def judge(
    recordings: Sequence[Recording],
    fps: Sequence[float],
    skew_ms: float | None,
    bound_ms: float | None,
) -> SkewVerdict:
    """Warnings when the skew or its bound exceed one frame period (at the highest frame
    rate among ``fps``), or when a node's bound is not known."""
    rates = [f for f in fps if f > 0]
    if not rates:
        return SkewVerdict(None, [])
    period = round(1000 / max(rates), 3)
    warnings = []
    if skew_ms is not None and skew_ms > period:
        warnings.append(
            f"start skew {skew_ms:.3f} ms exceeds one frame period ({period:g} ms): the "
            "cameras' first frames are more than a frame apart"
        )
    if bound_ms is not None and bound_ms > period:
        warnings.append(
            f"the clocks' error bounds allow {bound_ms:.3f} ms of skew, over one frame period "
            f"({period:g} ms): check chrony on the nodes with the largest bounds"
        )
    unknown = sorted(r.cam_id for r in recordings if r.clock_error_bound_ns is None)
    if len(recordings) > 1 and unknown:
        warnings.append(
            f"no clock error bound from {', '.join(unknown)}: the skew's bound is not known"
        )
    return SkewVerdict(period, warnings)


def refresh_ended(db: Session, session_ids: Collection[str]) -> None:
    """Recompute the skew and its bound of ended sessions that just got a recording: a
    node that was unreachable when its session ended reports its manifest later, and the
    figures must include it."""
    for session_id in session_ids:
        session = session_repository.get(db, session_id)
        if session is None or session.state not in FINAL_STATES:
            continue  # unknown (another coordinator's) or still running: settled later
        recordings = recording_repository.by_session(db, session_id)
        skew, bound = compute_skew_ms(recordings), compute_skew_bound_ms(recordings)
        if (skew, bound) != (session.skew_ms, session.skew_bound_ms):
            session.skew_ms, session.skew_bound_ms = skew, bound
            session_repository.save(db, session)
