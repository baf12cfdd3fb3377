"""The fleet in memory: addresses to call, cached status, liveness, round trips.

The fan-out and the heartbeats feed it; pages, ``/metrics`` and the lead-time choice read
it. Nothing here calls a node. A node is *online* when it answered a call recently; a
join or heartbeat alone says only that something with its key is out there.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.fleet.client import NodeAddress
from app.fleet.wire import NodeStatus

# A status this much older than the cached one is an overtaken answer, not a node whose
# clock was set back (which shows its new status after that).
STALE_WINDOW_NS = 5_000_000_000
# Round trips kept per node: at one status read every 15 s (a watched node) this is the
# last 16 minutes; a busy node read every 0.5 s keeps its last half minute.
RTTS_PER_NODE = 64


@dataclass
class NodeCache:
    """What the coordinator last learned about one node."""

    status: NodeStatus | None = None
    status_at_ns: int | None = None
    last_contact_ns: int | None = None
    last_heartbeat_ns: int | None = None
    last_error: str | None = None
    rtt_ms: float | None = None
    # (monotonic ns, ms) of the node's recent round trips, for the lead-time choice.
    rtts: deque[tuple[int, float]] = field(default_factory=lambda: deque(maxlen=RTTS_PER_NODE))
    last_manifest_sync_ns: int = 0
    # Set when the node's status stream broke and a re-probe failed: offline at once,
    # not only after offline_after_s; the next answer clears it.
    down: bool = False


@dataclass
class FleetState:
    """Addresses and caches for every approved node."""

    offline_after_s: float
    addresses: dict[str, NodeAddress] = field(default_factory=dict)
    cam_ids: dict[str, str] = field(default_factory=dict)
    cache: dict[str, NodeCache] = field(default_factory=dict)
    # Called whenever something a page shows may have changed (the live events look).
    on_change: Callable[[], None] | None = None

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def set_address(self, addr: NodeAddress, cam_id: str) -> None:
        """Remember where a node is (after a join, or loaded from the database)."""
        self.addresses[addr.node_id] = addr
        self.cam_ids[addr.node_id] = cam_id
        self.cache.setdefault(addr.node_id, NodeCache())
        self._changed()

    def remove(self, node_id: str) -> None:
        """Forget a node entirely (it was removed from the registry)."""
        self.addresses.pop(node_id, None)
        self.cam_ids.pop(node_id, None)
        self.cache.pop(node_id, None)
        self._changed()

    def contact(self, node_id: str, rtt_ms: float | None = None) -> None:
        """A node answered a call just now."""
        entry = self.cache.get(node_id)
        if entry is None:
            return  # removed while the call was under way
        entry.last_contact_ns = time.time_ns()
        entry.last_error = None
        entry.down = False
        if rtt_ms is not None:
            entry.rtt_ms = rtt_ms
            entry.rtts.append((time.monotonic_ns(), rtt_ms))
        self._changed()

    def touch(self, node_id: str) -> None:
        """A node's status stream showed it alive (a heartbeat comment): contact, without
        waking the live pages unless that ends an offline spell (it comes every second)."""
        entry = self.cache.get(node_id)
        if entry is None:
            return
        entry.last_contact_ns = time.time_ns()
        if entry.down:
            entry.down = False
            entry.last_error = None
            self._changed()

    def mark_offline(self, node_id: str, error: str) -> None:
        """The node is gone (its stream broke and it did not answer a probe): offline now."""
        entry = self.cache.get(node_id)
        if entry is not None:
            entry.down = True
            entry.last_error = error[:500]
            self._changed()

    def heartbeat(self, node_id: str) -> None:
        """A node proved itself in a join or heartbeat just now."""
        entry = self.cache.get(node_id)
        if entry is not None:
            entry.last_heartbeat_ns = time.time_ns()

    def failure(self, node_id: str, error: str) -> None:
        """A call to a node failed."""
        entry = self.cache.get(node_id)
        if entry is not None:
            entry.last_error = error[:500]
            self._changed()

    def set_status(self, node_id: str, status: NodeStatus) -> None:
        """A fresh status from the node (one older than the cached one, a poll's answer
        overtaken by the stream, is passed over)."""
        entry = self.cache.get(node_id)
        if entry is not None:
            old = entry.status
            if old is not None and 0 < old.time_ns - status.time_ns < STALE_WINDOW_NS:
                return
            entry.status = status
            entry.status_at_ns = time.time_ns()
            self._changed()

    def online(self, node_id: str, now_ns: int | None = None) -> bool:
        """True when the node answered a call recently enough."""
        entry = self.cache.get(node_id)
        if entry is None or entry.last_contact_ns is None or entry.down:
            return False
        now = now_ns if now_ns is not None else time.time_ns()
        return now - entry.last_contact_ns <= self.offline_after_s * 1e9

    def fresh_status(self, node_id: str, max_age_s: float) -> NodeStatus | None:
        """The cached status when it is at most ``max_age_s`` old."""
        entry = self.cache.get(node_id)
        if entry is None or entry.status is None or entry.status_at_ns is None:
            return None
        if time.time_ns() - entry.status_at_ns > max_age_s * 1e9:
            return None
        return entry.status

    def rtt_quantile_ms(
        self,
        q: float,
        node_ids: Iterable[str] | None = None,
        window_s: float | None = None,
        now_ns: int | None = None,
    ) -> float:
        """The ``q`` quantile (nearest rank; 0 when none) of the round trips of
        ``node_ids`` (every node when None) seen in the last ``window_s`` (all kept when
        None). A node that stalled minutes ago, or one not being called now, does not
        lengthen this command's lead."""
        ids = self.cache.keys() if node_ids is None else node_ids
        since = None
        if window_s is not None:
            since = (now_ns if now_ns is not None else time.monotonic_ns()) - int(window_s * 1e9)
        ordered = sorted(
            ms
            for node_id in ids
            if (entry := self.cache.get(node_id)) is not None
            for at, ms in list(entry.rtts)
            if since is None or at >= since
        )
        if not ordered:
            return 0.0
        rank = min(len(ordered), max(1, math.ceil(q * len(ordered))))
        return ordered[rank - 1]
