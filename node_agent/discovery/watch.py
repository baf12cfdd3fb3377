"""The node's own interface addresses, read with ifaddr; a change is reported at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import ifaddr

log = logging.getLogger(__name__)


def own_addresses() -> frozenset[tuple[str, str]]:
    """Every (interface, address) of this machine (IPv4 and IPv6)."""
    found: set[tuple[str, str]] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            found.add((adapter.nice_name, address))
    return frozenset(found)


class AddressWatch:
    """Reads the addresses every ``interval_s`` (in a worker thread) and calls
    ``on_change(old, new)`` when they differ."""

    def __init__(
        self,
        interval_s: float,
        on_change: Callable[[frozenset[tuple[str, str]], frozenset[tuple[str, str]]], None],
    ) -> None:
        self.interval_s = interval_s
        self.on_change = on_change
        self.current: frozenset[tuple[str, str]] = frozenset()
        self.changes = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        self.current = await asyncio.to_thread(own_addresses)
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                now = await asyncio.to_thread(own_addresses)
            except OSError as err:
                log.warning("discovery: reading the interface addresses failed: %s", err)
                continue
            if now != self.current:
                old, self.current = self.current, now
                self.changes += 1
                gone = sorted(a for _, a in old - now)
                came = sorted(a for _, a in now - old)
                log.info("discovery: addresses changed (gone %s, new %s)", gone, came)
                self.on_change(old, now)

    def start(self) -> None:
        """Begin watching."""
        self._task = asyncio.create_task(self._run(), name="address-watch")

    async def stop(self) -> None:
        """Stop watching."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
