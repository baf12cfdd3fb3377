"""A reader of any server-sent events stream for tests: events and comments, timed; and
the one parser of the stream's lines (``parse_sse``), which ``tests.sse_client`` uses too."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class Parsed:
    """One thing on a server-sent events stream: an event (``kind`` its name, ``data`` its
    JSON), a comment (``kind`` "comment", ``data`` the text) or a ``retry`` (``kind``
    "retry", ``data`` the milliseconds)."""

    kind: str
    data: Any
    event_id: str | None = None


def parse_sse(lines: Iterable[str]) -> Iterator[Parsed]:
    """The events, comments and retries of a stream's lines, as they come."""
    kind, data, event_id = "message", "", None
    for line in lines:
        if line == "":
            if data:
                yield Parsed(kind, json.loads(data), event_id)
            kind, data, event_id = "message", "", None
        elif line.startswith(":"):
            yield Parsed("comment", line[1:].strip())
        elif line.startswith("retry:"):
            yield Parsed("retry", int(line[6:].strip()))
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
        elif line.startswith("id:"):
            event_id = line[3:].strip()


@dataclass
class Item:
    """An event (``kind`` its name) or a comment (``kind`` "comment"), with its arrival."""

    kind: str
    data: Any
    at: float  # time.monotonic()


@dataclass
class StreamReader:
    """Reads ``url`` in a thread until closed (or until the server ends the stream)."""

    url: str
    token: str
    items: queue.Queue[Item] = field(default_factory=queue.Queue)
    status_code: int | None = None
    ended: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> StreamReader:
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        try:
            with (
                httpx.Client(timeout=httpx.Timeout(10, read=30)) as client,
                client.stream("GET", self.url, headers=headers) as resp,
            ):
                self.status_code = resp.status_code
                for got in parse_sse(resp.iter_lines()):
                    if self._stop.is_set():
                        return
                    if got.kind != "retry":
                        self.items.put(Item(got.kind, got.data, time.monotonic()))
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def next(self, timeout_s: float) -> Item:
        """The next item, or AssertionError after ``timeout_s``."""
        try:
            return self.items.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"nothing on the stream within {timeout_s} s") from None

    def next_event(self, timeout_s: float) -> Item:
        """The next event (comments passed over)."""
        deadline = time.monotonic() + timeout_s
        while True:
            item = self.next(max(0.0, deadline - time.monotonic()))
            if item.kind != "comment":
                return item

    def wait_for(self, predicate: Any, timeout_s: float) -> Item:
        """The first event for which ``predicate(data)`` holds."""
        deadline = time.monotonic() + timeout_s
        while True:
            item = self.next_event(max(0.0, deadline - time.monotonic()))
            if predicate(item.data):
                return item
