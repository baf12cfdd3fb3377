"""Browse ``_camfleet._tcp.local.``: the coordinators that advertise this fleet's id.

Matching the fleet id only sorts the answers: the id is public and anyone can advertise
it. Whether a candidate is the coordinator is decided by the handshake (``service``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from common.fleetproof import SERVICE_TYPE

# zeroconf (about 3 MB) is imported when browsing starts: a node with coordinator_url
# never pays for it.
if TYPE_CHECKING:
    from zeroconf import ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

log = logging.getLogger(__name__)

RESOLVE_TIMEOUT_MS = 3000
MAX_CANDIDATES = 64  # a network full of advertisers cannot grow this without bound


@dataclass(frozen=True)
class Candidate:
    """One advertised coordinator address of this fleet."""

    name: str
    url: str
    seen_monotonic: float


def _url(address: str, port: int) -> str:
    ip = ipaddress.ip_address(address)
    host = f"[{address}]" if ip.version == 6 else address
    return f"http://{host}:{port}"


def candidates_of(name: str, info: AsyncServiceInfo, fleet_id: str) -> list[Candidate]:
    """The URLs an answer offers, when it names this fleet (loopback and link-local last)."""
    from zeroconf import IPVersion

    props = info.properties or {}
    if props.get(b"fleet_id") != fleet_id.encode() or not info.port:
        return []
    now = time.monotonic()
    addresses = info.parsed_scoped_addresses(IPVersion.All)
    usable = [a for a in addresses if "%" not in a]  # a scoped (link-local v6) URL is fragile
    usable.sort(key=lambda a: (ipaddress.ip_address(a).is_loopback, a))
    return [Candidate(name, _url(a, info.port), now) for a in usable[:8]]


class Browser:
    """Keeps the current candidates while it runs; restartable (after an address change)."""

    def __init__(self, fleet_id: str, interfaces: list[str]) -> None:
        self.fleet_id = fleet_id
        self.interfaces = interfaces
        self.changed = asyncio.Event()
        self._found: dict[str, list[Candidate]] = {}
        self._zc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Called with the URLs no longer advertised (the link re-joins if it used one).
        self.on_gone: Callable[[set[str]], None] | None = None

    def candidates(self) -> list[Candidate]:
        """Every URL advertised for this fleet, the most recently seen first."""
        flat = [c for found in self._found.values() for c in found]
        return sorted(flat, key=lambda c: -c.seen_monotonic)

    async def start(self) -> None:
        """Begin browsing (zeroconf's network work runs on its own thread)."""
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        v6 = any(ipaddress.ip_address(a).version == 6 for a in self.interfaces)
        self._zc = AsyncZeroconf(
            interfaces=list(self.interfaces) if self.interfaces else InterfaceChoice.All,
            ip_version=IPVersion.All if v6 else IPVersion.V4Only,
        )
        self._browser = AsyncServiceBrowser(
            self._zc.zeroconf, [SERVICE_TYPE], handlers=[self._on_change]
        )

    async def stop(self) -> None:
        """Stop browsing and forget what was seen."""
        for task in list(self._tasks):
            task.cancel()
        browser, zc = self._browser, self._zc
        self._browser = self._zc = None
        if browser is not None:
            await browser.async_cancel()
        if zc is not None:
            await zc.async_close()
        self._found.clear()

    async def restart(self) -> None:
        """Browse afresh (the node's addresses changed: zeroconf's sockets follow them)."""
        await self.stop()
        await self.start()

    def _on_change(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        from zeroconf import ServiceStateChange

        if state_change is ServiceStateChange.Removed:
            gone = self._found.pop(name, None)
            if gone is not None:
                log.info("discovery: %r withdrew its advertisement", name)
                self.changed.set()
                self._gone({c.url for c in gone})
            return
        task = asyncio.get_running_loop().create_task(self._resolve(zeroconf, service_type, name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _gone(self, urls: set[str]) -> None:
        if urls and self.on_gone is not None:
            self.on_gone(urls)

    async def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str) -> None:
        from zeroconf.asyncio import AsyncServiceInfo

        info = AsyncServiceInfo(service_type, name)
        if not await info.async_request(zeroconf, RESOLVE_TIMEOUT_MS):
            return
        found = candidates_of(name, info, self.fleet_id)
        before = {c.url for c in self._found.get(name, [])}
        self._gone(before - {c.url for c in found})
        if not found:
            self._found.pop(name, None)
            return
        if name not in self._found and len(self._found) >= MAX_CANDIDATES:
            return
        if [c.url for c in self._found.get(name, [])] != [c.url for c in found]:
            log.info("discovery: %r offers %s", name, ", ".join(c.url for c in found))
        self._found[name] = found
        self.changed.set()
