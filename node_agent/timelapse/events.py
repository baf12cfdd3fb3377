"""What the timelapse did, told to an observer (tests, the benchmark)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TimelapseEvent:
    """What the runner did, for an observer (tests, the benchmark).

    kind: 'started' and 'stopped' (a run began or ended, whoever asked), 'open',
    'capture', 'skip', 'failure' or 'backoff'; 'render_failed' and 'schedule_failed' (a
    run or a start that ended on an error). ``scheduled_ns`` and
    ``fired_ns`` are monotonic; ``delay_s`` is a backoff's wait.
    """

    kind: str
    index: int | None = None
    scheduled_ns: int | None = None
    fired_ns: int | None = None
    duration_s: float | None = None
    failures: int = 0
    delay_s: float | None = None
    detail: str = ""


Observer = Callable[[TimelapseEvent], None]


def fan_out(*observers: Observer) -> Observer:
    """One observer that tells each of ``observers`` in turn; one that raises is logged
    and does not keep the event from the others."""

    def tell(event: TimelapseEvent) -> None:
        for observer in observers:
            try:
                observer(event)
            except Exception:  # an observer's bug must not stop a capture
                logging.getLogger(__name__).exception("timelapse observer %r failed", observer)

    return tell
