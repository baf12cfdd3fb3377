"""Broadcaster: one publisher, many subscribers, each with a bounded queue.

Publishing never waits: an event is put on every subscriber's queue at once, and a
subscriber whose queue is full (a client that stopped reading) is dropped, so a slow
client never delays the others. The stream ends for a dropped subscriber; its browser
reconnects and starts again from a snapshot.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One server-sent event: its kind, sequence number and JSON data."""

    kind: str
    seq: int
    data: Any

    def encode(self) -> bytes:
        """The event in the text/event-stream framing."""
        body = json.dumps(self.data, separators=(",", ":"))
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {body}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    """One connected client's queue; ``dropped`` once it fell behind."""

    queue: asyncio.Queue[Event | None]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self) -> None:
        """End this subscriber's stream: what is queued is dropped, then None ends it."""
        self.dropped.set()
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Broadcaster:
    """Fans events out to subscribers without ever waiting for one of them."""

    def __init__(self, queue_limit: int = 256) -> None:
        self.queue_limit = queue_limit
        self.seq = 0
        self.subscribers: set[Subscriber] = set()
        self.dropped_total = 0

    def subscribe(self) -> Subscriber:
        """A new subscriber; it sees every event published from now on."""
        sub = Subscriber(asyncio.Queue(maxsize=self.queue_limit))
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        """Forget a subscriber (its client went away)."""
        self.subscribers.discard(sub)

    def close(self) -> None:
        """End every stream (the server is shutting down; the pages reconnect)."""
        for sub in list(self.subscribers):
            sub.end()
        self.subscribers.clear()

    def next_seq(self) -> int:
        """The next sequence number (snapshots take one too, so ids only grow)."""
        self.seq += 1
        return self.seq

    def publish(self, kind: str, data: Any) -> Event:
        """Queue an event for every subscriber; drop those whose queue is full."""
        event = Event(kind, self.next_seq(), data)
        for sub in list(self.subscribers):
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.subscribers.discard(sub)
                sub.dropped.set()
                self.dropped_total += 1
        return event
