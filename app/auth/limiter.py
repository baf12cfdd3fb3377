"""Failed sign-ins counted per key (a client address, a user name) in a sliding window."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 4096  # the least recently failed key is forgotten beyond this


class FailureLimiter:
    """After ``max_failures`` failures of a key within ``window_s``, the key must wait.

    Memory is bounded: at most ``max_keys`` keys, each with at most ``max_failures``
    timestamps. A key that keeps failing stays the most recent, so flooding the table with
    other keys (made-up user names) does not free the flooder's own address.
    """

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, key: str) -> int | None:
        """Whole seconds ``key`` must wait before it may try again, or None."""
        now = self.clock()
        with self._lock:
            times = self._failures.get(key)
            if times is None:
                return None
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if not times:
                del self._failures[key]
                return None
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[0] + self.window_s - now))

    def fail(self, key: str) -> None:
        now = self.clock()
        with self._lock:
            times = self._failures.pop(key, None)
            if times is None:
                times = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[key] = times  # now the most recent
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)
