"""Start skew: the spread of first-frame times, each corrected by its node's clock offset."""

from __future__ import annotations

from collections.abc import Sequence

from app.recordings.models import Recording


def compute_skew_ms(recordings: Sequence[Recording]) -> float | None:
    """Spread of first-frame times, each corrected by its node's clock offset."""
    corrected = [r.first_frame_ns - (r.clock_offset_ns or 0) for r in recordings]
    if len(corrected) < 2:
        return 0.0 if corrected else None
    return round((max(corrected) - min(corrected)) / 1e6, 4)
