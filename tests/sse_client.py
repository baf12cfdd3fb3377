"""A server-sent events reader for tests: a thread that parses the stream into a queue."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.stream_reader import parse_sse


@dataclass
class Received:
    """One event as the client saw it, with when it arrived (time.time_ns)."""

    kind: str
    data: Any
    event_id: str | None
    at_ns: int


@dataclass
class EventReader:
    """Reads ``GET /api/v1/events`` in a thread until closed."""

    url: str
    token: str
    events: queue.Queue[Received] = field(default_factory=queue.Queue)
    retry_ms: int | None = None
    comments: int = 0
    ended: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> EventReader:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(30, read=60)) as client,
                client.stream("GET", f"{self.url}/api/v1/events", headers=headers) as resp,
            ):
                resp.raise_for_status()
                for got in parse_sse(resp.iter_lines()):
                    if self._stop.is_set():
                        return
                    if got.kind == "comment":
                        self.comments += 1
                    elif got.kind == "retry":
                        self.retry_ms = got.data
                    else:
                        self.events.put(Received(got.kind, got.data, got.event_id, time.time_ns()))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self, timeout_s: float) -> Received:
        """The next event, or AssertionError after ``timeout_s``."""
        try:
            return self.events.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no event within {timeout_s} s") from None

    def first_per_key(self, key: Any, keys: set[str], timeout_s: float) -> dict[str, Received]:
        """For each of ``keys``, the first event with ``key(event) == it`` (other events are
        passed over), all within ``timeout_s``."""
        found: dict[str, Received] = {}
        deadline = time.monotonic() + timeout_s
        while found.keys() != keys:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"only {sorted(found)} of {sorted(keys)} in {timeout_s} s")
            event = self.next(left)
            k = key(event)
            if k in keys and k not in found:
                found[k] = event
        return found

    def wait_for(self, predicate: Any, timeout_s: float) -> Received:
        """The first event for which ``predicate(event)`` holds, within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no matching event within {timeout_s} s")
            event = self.next(left)
            if predicate(event):
                return event
