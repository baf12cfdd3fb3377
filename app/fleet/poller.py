"""StatusPoller: refreshes every node's cached status and collects manifests in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from app.fleet.client import NodeAddress
from app.fleet.fanout import Fanout
from app.fleet.state import FleetState
from app.fleet.wire import Manifest, NodeStatus, RecorderState

log = logging.getLogger(__name__)

# How long after an armed node's start instant (or a stop) it is read again.
FOLLOW_UP_MARGIN_S = 0.15
# States in which a node is read every busy_interval_s, not only at the sweep.
BUSY_STATES = frozenset({RecorderState.armed, RecorderState.recording, RecorderState.stopping})
# How often a refresh looks whether the node's commands are done.
REFRESH_RECHECK_S = 0.05


class StatusPoller:
    """Polls ``/api/v1/status`` on every node, and ``/api/v1/recordings`` now and then.

    A node whose previous poll is still under way is skipped, so a slow node costs one
    call at a time, never a pile of them. After each sweep ``after_sweep`` runs (the
    sessions' reconciliation).
    """

    def __init__(
        self,
        fanout: Fanout,
        state: FleetState,
        interval_s: float,
        manifest_sync_interval_s: float,
        ingest: Callable[[str, list[Manifest]], Awaitable[None]],
        after_sweep: Callable[[], Awaitable[None]] | None = None,
        busy_interval_s: float | None = None,
    ) -> None:
        self.fanout = fanout
        self.state = state
        self.interval_s = interval_s
        self.manifest_sync_interval_s = manifest_sync_interval_s
        self.ingest = ingest
        self.after_sweep = after_sweep
        self.busy_interval_s = busy_interval_s
        self._task: asyncio.Task[None] | None = None
        self._busy_task: asyncio.Task[None] | None = None
        self._refreshes: set[asyncio.Task[None]] = set()
        self._polling: set[str] = set()
        self._follow_ups: dict[str, asyncio.TimerHandle] = {}
        # Nodes whose status stream is up (app.fleet.watch): the stream brings their
        # changes, so the sweep reads them only every watched_interval_s (or when their
        # manifests are due) and the busy poll leaves them be.
        self.watched: Callable[[str], bool] | None = None
        self.watched_interval_s = 15.0
        self._last_poll: dict[str, float] = {}

    async def poll_node(self, addr: NodeAddress, manifests: bool = False) -> None:
        """Refresh one node's status; collect its manifests when due (or asked).

        A node with commands under way is not polled: on a slow node, which gets one
        call at a time, a poll would take the place of a stop; the command's own answer
        counts as contact, and the refresh after it reads the status.
        """
        if addr.node_id in self._polling or self.fanout.in_flight(addr.node_id) > 0:
            return
        self._polling.add(addr.node_id)
        self._last_poll[addr.node_id] = time.monotonic()
        try:
            await self._poll(addr, manifests)
        finally:
            self._polling.discard(addr.node_id)

    async def _poll(self, addr: NodeAddress, manifests: bool) -> None:
        client = self.fanout.client
        call = await self.fanout.call(addr, "status", client.status)
        if not call.ok or call.value is None:
            return
        self.state.set_status(addr.node_id, call.value)
        self._follow_up(addr.node_id, call.value)
        entry = self.state.cache.get(addr.node_id)
        if entry is None:
            return
        now = time.time_ns()
        if manifests or now - entry.last_manifest_sync_ns >= self.manifest_sync_interval_s * 1e9:
            listing = await self.fanout.call(addr, "recordings", client.recordings)
            if listing.ok and listing.value is not None:
                entry.last_manifest_sync_ns = now
                found = [r.manifest for r in listing.value.recordings if r.manifest]
                if found:
                    await self.ingest(addr.node_id, found)

    def _follow_up(self, node_id: str, status: NodeStatus) -> None:
        """Read an armed node again just after its start instant, and a stopping node
        again shortly, so the change reaches the live pages without waiting a sweep."""
        rec = status.recorder
        delay_s: float | None = None
        if rec.state == RecorderState.armed and rec.start_at_ns is not None:
            delay_s = (rec.start_at_ns - status.time_ns) / 1e9 + FOLLOW_UP_MARGIN_S
        elif rec.state == RecorderState.stopping:
            delay_s = FOLLOW_UP_MARGIN_S
        if delay_s is None or delay_s >= self.interval_s or node_id in self._follow_ups:
            return  # the next sweep comes sooner anyway (or one is already planned)
        loop = asyncio.get_running_loop()

        def due() -> None:
            self._follow_ups.pop(node_id, None)
            self.refresh_soon([node_id])

        self._follow_ups[node_id] = loop.call_later(max(0.0, delay_s), due)

    def refresh_soon(self, node_ids: list[str]) -> None:
        """Re-read these nodes' status now, in the background (after a command changed it),
        so pages do not show the old state until the next sweep."""
        addrs = [a for n in node_ids if (a := self.state.addresses.get(n)) is not None]
        if not addrs:
            return
        task = asyncio.create_task(self._refresh(addrs), name="status-refresh")
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, addrs: list[NodeAddress]) -> None:
        await asyncio.gather(*(self._refresh_one(a) for a in addrs), return_exceptions=True)

    async def _refresh_one(self, addr: NodeAddress) -> None:
        """Poll once the node's commands are done (a start is followed by its beep, a stop
        by the manifests): a refresh skipped then would leave the change to the next sweep."""
        deadline = time.monotonic() + self.interval_s
        while self.fanout.in_flight(addr.node_id) > 0 or addr.node_id in self._polling:
            if time.monotonic() > deadline:
                return  # the sweep reads it
            await asyncio.sleep(REFRESH_RECHECK_S)
        await self.poll_node(addr)

    def _sweep_due(self, addr: NodeAddress) -> bool:
        """Whether the sweep reads this node (a watched one only now and then)."""
        if self.watched is None or not self.watched(addr.node_id):
            return True
        entry = self.state.cache.get(addr.node_id)
        if entry is not None and (
            time.time_ns() - entry.last_manifest_sync_ns >= self.manifest_sync_interval_s * 1e9
        ):
            return True
        last = self._last_poll.get(addr.node_id)
        return last is None or time.monotonic() - last >= self.watched_interval_s

    async def poll_all(self) -> None:
        """One sweep over the fleet, all nodes at once, then the after-sweep step."""
        await asyncio.gather(
            *(self.poll_node(a) for a in list(self.state.addresses.values()) if self._sweep_due(a)),
            return_exceptions=True,
        )
        if self.after_sweep is not None:
            await self.after_sweep()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.poll_all()
            except Exception:  # a bug in one sweep must not end polling for good
                log.exception("status sweep failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def busy_nodes(self) -> list[NodeAddress]:
        """Nodes whose last status says armed, recording or stopping."""
        out = []
        for node_id, addr in list(self.state.addresses.items()):
            entry = self.state.cache.get(node_id)
            status = entry.status if entry is not None else None
            if self.watched is not None and self.watched(node_id):
                continue  # its stream brings the changes
            if status is not None and status.recorder.state in BUSY_STATES:
                out.append(addr)
        return out

    async def _run_busy(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await asyncio.gather(
                    *(self.poll_node(a) for a in self.busy_nodes()), return_exceptions=True
                )
            except Exception:
                log.exception("busy-node poll failed")

    def start(self) -> None:
        """Begin polling in the background."""
        self._task = asyncio.create_task(self._run(), name="status-poller")
        busy = self.busy_interval_s
        if busy is not None and busy < self.interval_s:
            self._busy_task = asyncio.create_task(self._run_busy(busy), name="busy-poller")

    async def stop(self) -> None:
        """Stop polling."""
        for handle in self._follow_ups.values():
            handle.cancel()
        self._follow_ups.clear()
        for task in [self._task, self._busy_task, *self._refreshes]:
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
