"""LiveFleet: turns the coordinator's caches into events.

The caches (``FleetState``) call :meth:`LiveFleet.poke` whenever a node answers, fails or
sends a fresh status; the watcher wakes, reads every node as ``GET /api/v1/nodes`` shows
it, and publishes a ``node`` event for each one that changed. It also wakes every
``tick_s`` on its own, because a node going offline is the *absence* of an answer.
Nothing here calls a node or the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from app.events.broadcaster import Broadcaster, Event
from app.nodes.models import NodeList

log = logging.getLogger(__name__)

# Fields that change on every call without saying anything new about the node.
_VOLATILE = ("last_heartbeat", "last_contact", "rtt_ms")
_VOLATILE_STATUS = ("time_ns", "uptime_s")


def comparable(node: dict[str, Any]) -> dict[str, Any]:
    """A node's view without the fields that move on every poll."""
    view = {k: v for k, v in node.items() if k not in _VOLATILE}
    status = view.get("status")
    if isinstance(status, dict):
        view["status"] = {k: v for k, v in status.items() if k not in _VOLATILE_STATUS}
    return view


class LiveFleet:
    """Watches the caches and publishes what changed to the broadcaster."""

    def __init__(
        self, broadcaster: Broadcaster, read: Any, tick_s: float = 1.0, coalesce_s: float = 0.02
    ) -> None:
        self.broadcaster = broadcaster
        self.read: Any = read  # () -> NodeList, the same view GET /api/v1/nodes serves
        self.tick_s = tick_s
        self.coalesce_s = coalesce_s
        self._wake = asyncio.Event()
        self._seen: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None

    def poke(self) -> None:
        """Something in the caches changed: look now (cheap; many pokes make one look)."""
        self._wake.set()

    def nodes(self) -> NodeList:
        """The fleet as the page shows it."""
        listing: NodeList = self.read()
        return listing

    def snapshot(self) -> Event:
        """The whole fleet, for a client that just connected."""
        data = self.nodes().model_dump(mode="json")
        return Event("snapshot", self.broadcaster.next_seq(), data)

    def publish_session(self, session: dict[str, Any]) -> None:
        """A session started, stopped or changed."""
        self.broadcaster.publish("session", session)

    def look(self) -> int:
        """Publish an event per node that changed since the last look; how many."""
        listing = self.nodes().model_dump(mode="json")
        published = 0
        current: dict[str, dict[str, Any]] = {}
        for node in listing["nodes"]:
            node_id = node["node_id"]
            view = comparable(node)
            current[node_id] = view
            if self._seen.get(node_id) != view:
                self.broadcaster.publish("node", node)
                published += 1
        for gone in self._seen.keys() - current.keys():
            self.broadcaster.publish("node_removed", {"node_id": gone})
            published += 1
        self._seen = current
        return published

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            await asyncio.sleep(self.coalesce_s)  # a sweep's answers arrive together
            self._wake.clear()
            try:
                self.look()
            except Exception:  # a bug in one look must not end the live view for good
                log.exception("live events: look failed")

    def start(self) -> None:
        """Begin watching in the background."""
        self.look()
        self._task = asyncio.create_task(self._run(), name="live-events")

    async def stop(self) -> None:
        """Stop watching, and end every stream."""
        self.broadcaster.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
