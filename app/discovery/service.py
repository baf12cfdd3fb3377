"""The mDNS advertiser and the coordinator's half of the mutual proof.

``Advertiser`` registers ``_camfleet._tcp.local.`` with the fleet's public id through
python-zeroconf's asyncio API (its network work runs on zeroconf's own thread, never on
the event loop). ``handshake`` answers an agent's nonce with an HMAC keyed by the fleet
token; ``proof_check`` is the AuthGate's test of the agent's answer on the join, made
before the body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import socket
from collections.abc import Callable

import ifaddr
from starlette.datastructures import Headers
from starlette.types import Scope
from zeroconf import Error as ZeroconfError
from zeroconf import InterfaceChoice, IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from app import __version__
from app.context import Fleet
from app.deps import FLEET_PROOF_KEY
from app.fleet.wire import Handshake, HandshakeRequest
from app.settings import CoordinatorSettings
from common import fleetproof
from common.http import Refusal
from common.identity import NONCE_HEADER

log = logging.getLogger(__name__)


def fleet_id_of(settings: CoordinatorSettings) -> str:
    """The fleet's public id: configured, or derived from the fleet token."""
    return settings.discovery.fleet_id or fleetproof.fleet_id(
        settings.fleet_token.get_secret_value()
    )


def handshake(fleet: Fleet, req: HandshakeRequest, peer: str) -> Handshake:
    """A single-use nonce and the proof that this coordinator holds the fleet token."""
    settings = fleet.settings
    nonce = fleet.handshakes.issue(req.node_id, req.client_nonce)
    fid = fleet_id_of(settings)
    proof = fleetproof.coordinator_proof(
        settings.fleet_token.get_secret_value(), req.client_nonce, nonce, req.node_id, fid, peer
    )
    return Handshake(
        node_id=req.node_id,
        nonce=nonce,
        expires_in_s=fleet.handshakes.ttl_s,
        fleet_id=fid,
        api_version=fleetproof.API_VERSION,
        seen_address=peer,
        proof=proof,
    )


def _refusal(message: str) -> Refusal:
    return Refusal(401, message, "unauthorized", {"WWW-Authenticate": "Bearer"})


def proof_check(fleet: Fleet) -> Callable[[Scope, Headers], Refusal | None]:
    """The join's check when it carries no Authorization header: the agent's HMAC over the
    handshake it answers (``X-Camfleet-Fleet-Proof``). The nonce is spent by the join."""

    def check(scope: Scope, headers: Headers) -> Refusal | None:
        proof = headers.get(fleetproof.PROOF_HEADER)
        nonce = headers.get(NONCE_HEADER)
        if proof is None:
            return _refusal(
                "send 'Authorization: Bearer <fleet token>', or answer a handshake (POST "
                f"/api/v1/nodes/handshake) with {fleetproof.PROOF_HEADER}"
            )
        if nonce is None or len(nonce) > fleetproof.NONCE_CHARS or len(proof) > 64:
            return _refusal(f"{fleetproof.PROOF_HEADER} needs the handshake's {NONCE_HEADER}")
        entry = fleet.handshakes.peek(nonce)
        if entry is None or entry.client_nonce is None:
            return _refusal("the handshake is unknown, already used or expired; start a new one")
        settings = fleet.settings
        expected = fleetproof.node_proof(
            settings.fleet_token.get_secret_value(),
            entry.client_nonce,
            nonce,
            entry.node_id,
            fleet_id_of(settings),
        )
        if not fleetproof.same(expected, proof):
            fleet.join_refused.labels("bad_fleet_proof").inc()
            log.warning("a join for %r carried a wrong fleet proof", entry.node_id)
            return _refusal(f"{fleetproof.PROOF_HEADER} does not verify: wrong fleet token")
        scope.setdefault("state", {})[FLEET_PROOF_KEY] = True
        return None

    return check


def _machine_addresses() -> list[str]:
    """Every IPv4 address of this machine, loopback last (ifaddr reads the interfaces)."""
    found: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                found.append(ip.ip)
    outside = [a for a in found if not ipaddress.ip_address(a).is_loopback]
    return outside or found


def _label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", text)[:40].strip("-") or "camfleet"


class Advertiser:
    """Registers this coordinator as ``_camfleet._tcp.local.`` while the app runs."""

    def __init__(self, settings: CoordinatorSettings, watch_interval_s: float = 2.0) -> None:
        self.settings = settings
        self.watch_interval_s = watch_interval_s
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._watch: asyncio.Task[None] | None = None
        self.name: str | None = None
        self.addresses: list[str] = []

    async def run(self) -> None:
        """Advertise, and with ``addresses: []`` advertise again whenever the machine's
        addresses change (DHCP, AP fallback), so agents that look again find it."""
        await self.start()
        if self.settings.discovery.addresses:
            return
        self._watch = asyncio.create_task(self._follow(), name="discovery-advertiser")

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval_s)
            try:
                now = await asyncio.to_thread(_machine_addresses)
            except OSError as err:
                log.warning("discovery: reading the addresses failed: %s", err)
                continue
            if sorted(now) != sorted(self.addresses):
                log.info("discovery: addresses changed to %s; advertising again", now)
                await self.stop(keep_watching=True)
                await self.start()

    async def start(self) -> None:
        """Advertise; a failure is logged and leaves the coordinator running unadvertised."""
        d = self.settings.discovery
        host = socket.gethostname().split(".")[0]
        addresses = d.addresses or await asyncio.to_thread(_machine_addresses)
        v6 = any(ipaddress.ip_address(a).version == 6 for a in [*addresses, *d.interfaces])
        instance = d.instance_name or f"camfleet coordinator on {host}"
        try:
            info = self._info_for(instance, host, addresses)
        except (ValueError, ZeroconfError) as err:
            log.error("discovery: the advertisement is not valid: %s", err)
            return
        try:
            self._zc = AsyncZeroconf(
                interfaces=list(d.interfaces) if d.interfaces else InterfaceChoice.All,
                ip_version=IPVersion.All if v6 else IPVersion.V4Only,
            )
            await self._zc.async_register_service(info, allow_name_change=True)
        except (OSError, ZeroconfError) as err:
            log.error("discovery: could not advertise over mDNS: %s", err)
            await self.stop(keep_watching=True)
            self.addresses = addresses  # tried again when they change
            return
        self._info, self.name, self.addresses = info, info.name, addresses
        log.info("discovery: advertised %r at %s", info.name, ", ".join(addresses))

    def _info_for(self, instance: str, host: str, addresses: list[str]) -> AsyncServiceInfo:
        d = self.settings.discovery
        return AsyncServiceInfo(
            fleetproof.SERVICE_TYPE,
            f"{instance}.{fleetproof.SERVICE_TYPE}",
            port=d.port or self.settings.port,
            properties={
                "fleet_id": fleet_id_of(self.settings),
                "api": fleetproof.API_VERSION,
                "version": __version__,
            },
            server=f"{_label(host)}-camfleet.local.",
            parsed_addresses=addresses,
        )

    async def stop(self, keep_watching: bool = False) -> None:
        """Withdraw the advertisement and close zeroconf."""
        if self._watch is not None and not keep_watching:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
            self._watch = None
        zc, info = self._zc, self._info
        self._zc = self._info = None
        if zc is None:
            return
        if info is not None:
            try:
                await zc.async_unregister_service(info)
            except OSError as err:
                log.warning("discovery: withdrawing the advertisement failed: %s", err)
        await zc.async_close()
