"""The clock the agent's loops read: a small protocol, so tests drive time instead of sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Wall and monotonic time, and the two ways a loop waits."""

    def time_ns(self) -> int:
        """Wall-clock UTC nanoseconds (file names, manifests, status)."""

    def monotonic_ns(self) -> int:
        """Monotonic nanoseconds (intervals, deadlines)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        """Wait up to ``timeout_s``; True when ``event`` was set."""


class SystemClock:
    """The real clocks."""

    def time_ns(self) -> int:
        """``time.time_ns()``."""
        return time.time_ns()

    def monotonic_ns(self) -> int:
        """``time.monotonic_ns()``."""
        return time.monotonic_ns()

    def sleep(self, seconds: float) -> None:
        """``time.sleep``."""
        time.sleep(seconds)

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        """``event.wait``."""
        return event.wait(timeout_s)
