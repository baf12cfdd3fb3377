"""Gap tracking: the slots a timelapse missed and the stills it took late."""

from __future__ import annotations

import logging
import threading
from collections import deque

from node_agent.timelapse.schemas import TimelapseGap

log = logging.getLogger(__name__)

MAX_GAPS = 50


class GapLog:
    """The last ``MAX_GAPS`` gaps, each logged once as it is recorded."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gaps: deque[TimelapseGap] = deque(maxlen=MAX_GAPS)

    def record(
        self, kind: str, scheduled_wall_ns: int, slots: int, reason: str, late_ms: float | None
    ) -> None:
        """Note a gap: ``missed`` slots, or a ``late`` still."""
        gap = TimelapseGap(
            kind=kind, scheduled_ns=scheduled_wall_ns, slots=slots, late_ms=late_ms, reason=reason
        )
        with self._lock:
            self._gaps.append(gap)
        if kind == "late":
            log.warning("timelapse gap: a still started %.0f ms late (%s)", late_ms or 0, reason)
        else:
            log.warning("timelapse gap: %d slot(s) without a still (%s)", slots, reason)

    def recent(self) -> list[TimelapseGap]:
        """The gaps kept, oldest first."""
        with self._lock:
            return list(self._gaps)
