"""Start skew: the spread of first-frame times, each corrected by its node's clock offset."""

from __future__ import annotations

from collections.abc import Collection, Sequence

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


def refresh_ended(db: Session, session_ids: Collection[str]) -> None:
    """Recompute the skew of ended sessions that just got a recording: a node that was
    unreachable when its session ended reports its manifest later, and the skew must
    include it."""
    for session_id in session_ids:
        session = session_repository.get(db, session_id)
        if session is None or session.state not in FINAL_STATES:
            continue  # unknown (another coordinator's) or still running: settled later
        skew = compute_skew_ms(recording_repository.by_session(db, session_id))
        if skew != session.skew_ms:
            session.skew_ms = skew
            session_repository.save(db, session)
