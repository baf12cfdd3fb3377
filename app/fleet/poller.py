"""StatusPoller: refreshes every node's cached status and collects manifests in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from app.fleet.client import AgentClient, NodeAddress
from app.fleet.state import FleetState
from app.fleet.wire import Manifest

log = logging.getLogger(__name__)


class StatusPoller:
    """Polls ``/api/v1/status`` on every node, and ``/api/v1/recordings`` now and then."""

    def __init__(
        self,
        client: AgentClient,
        state: FleetState,
        interval_s: float,
        manifest_sync_interval_s: float,
        ingest: Callable[[str, list[Manifest]], None],
    ) -> None:
        self.client = client
        self.state = state
        self.interval_s = interval_s
        self.manifest_sync_interval_s = manifest_sync_interval_s
        self.ingest = ingest
        self._task: asyncio.Task[None] | None = None
        self._refreshes: set[asyncio.Task[None]] = set()

    async def poll_node(self, addr: NodeAddress) -> None:
        """Refresh one node's status; collect its manifests when due."""
        call = await self.client.status(addr)
        if not call.ok or call.value is None:
            self.state.failure(addr.node_id, call.error or "no status")
            return
        self.state.contact(addr.node_id, call.latency_ms)
        entry = self.state.cache[addr.node_id]
        entry.status = call.value
        now = time.time_ns()
        if now - entry.last_manifest_sync_ns >= self.manifest_sync_interval_s * 1e9:
            listing = await self.client.recordings(addr)
            if listing.ok and listing.value is not None:
                entry.last_manifest_sync_ns = now
                manifests = [r.manifest for r in listing.value.recordings if r.manifest]
                if manifests:
                    self.ingest(addr.node_id, manifests)

    def refresh_soon(self, node_ids: list[str]) -> None:
        """Re-read these nodes' status now, in the background (after a command changed it),
        so pages do not show the old state until the next sweep."""
        addrs = [a for n in node_ids if (a := self.state.addresses.get(n)) is not None]
        task = asyncio.create_task(self._refresh(addrs), name="status-refresh")
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh(self, addrs: list[NodeAddress]) -> None:
        await asyncio.gather(*(self.poll_node(a) for a in addrs), return_exceptions=True)

    async def poll_all(self) -> None:
        """One sweep over the fleet, all nodes at once."""
        await asyncio.gather(*(self.poll_node(a) for a in list(self.state.addresses.values())))

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.poll_all()
            except Exception:  # a bug in one sweep must not end polling for good
                log.exception("status sweep failed")
            await asyncio.sleep(max(0.0, self.interval_s - (time.monotonic() - started)))

    def start(self) -> None:
        """Begin polling in the background."""
        self._task = asyncio.create_task(self._run(), name="status-poller")

    async def stop(self) -> None:
        """Stop polling."""
        for task in [self._task, *self._refreshes]:
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
