"""The agent's half of discovery: pick an advertised coordinator, make it prove it holds
the fleet token, then join it with the node's own proof and its API token sealed.

A candidate that fails the proof is rejected for ``reject_for_s`` and the next one is
tried; it has learnt the node id and a random nonce, nothing else (docs/discovery.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import re
import time

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from common import fleetproof
from common.identity import NONCE_HEADER, SIGNATURE_HEADER, sign
from node_agent.discovery.browse import Browser
from node_agent.discovery.schemas import RejectedCandidate
from node_agent.discovery.settings import AgentDiscoverySettings
from node_agent.link_schemas import Handshake, JoinRequest, JoinResponse

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 8 * 1024  # a handshake or join answer is a few hundred bytes
_B64_32 = re.compile(r"[A-Za-z0-9_-]{43}")
# A candidate that is merely unreachable is tried again this soon (it may be back).
UNREACHABLE_RETRY_S = 2.0


class NotTheCoordinator(RuntimeError):
    """The candidate could not prove it holds the fleet token (or is behind a relay)."""


async def _post(
    client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, str | None]:
    """POST and read at most MAX_ANSWER_BYTES; the status, body and our end's address."""
    async with client.stream("POST", url, content=body, headers=headers) as resp:
        stream = resp.extensions.get("network_stream")
        local = stream.get_extra_info("client_addr") if stream is not None else None
        data = b""
        async for chunk in resp.aiter_bytes():
            data += chunk
            if len(data) > MAX_ANSWER_BYTES:
                raise NotTheCoordinator(f"{url} answered more than {MAX_ANSWER_BYTES} bytes")
        return resp.status_code, data, local[0] if local else None


def same_ip(a: str, b: str) -> bool:
    """Whether two address texts name one IP (an IPv4-mapped IPv6 address is its IPv4)."""

    def norm(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | str:
        try:
            ip = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            return text
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        return ip

    return norm(a) == norm(b)


class Finder:
    """Advertised candidates for this fleet, and the mutual join to one of them."""

    def __init__(self, settings: AgentDiscoverySettings, fleet_token: str) -> None:
        self.settings = settings
        self.fleet_token = fleet_token
        self.fleet_id = settings.fleet_id or fleetproof.fleet_id(fleet_token)
        self.browser = Browser(self.fleet_id, settings.interfaces)
        self._rejected: dict[str, tuple[float, str]] = {}  # url -> (until, why)
        self.error: str | None = None  # why browsing does not run, if it does not

    async def start(self) -> None:
        """Begin browsing; while mDNS cannot start (no interface up yet), try again."""
        attempt = 0
        while True:
            try:
                await self.browser.start()
            except OSError as err:
                self.error = f"mDNS unavailable: {err}"
                if attempt == 0:
                    log.warning("discovery: cannot browse yet: %s", err)
                with contextlib.suppress(OSError):
                    await self.browser.stop()
                attempt += 1
                await asyncio.sleep(min(2.0 * attempt, 30.0))
                continue
            self.error = None
            return

    async def stop(self) -> None:
        """Stop browsing."""
        await self.browser.stop()

    async def addresses_changed(self) -> None:
        """Browse afresh on the new addresses; forget rejections of mere unreachability."""
        now = time.monotonic()
        self._rejected = {
            u: (until, why)
            for u, (until, why) in self._rejected.items()
            if until > now and why.startswith("not the coordinator")
        }
        try:
            await self.browser.restart()
        except OSError as err:
            self.error = f"mDNS unavailable: {err}"
            log.warning("discovery: browsing again failed: %s", err)
        else:
            self.error = None

    def rejected(self) -> list[RejectedCandidate]:
        """The candidates not tried at the moment."""
        now = time.monotonic()
        return [
            RejectedCandidate(url=u, reason=why, retry_in_s=round(until - now, 1))
            for u, (until, why) in self._rejected.items()
            if until > now
        ]

    def failed(self, url: str, err: BaseException) -> None:
        """Do not try ``url`` for a while: long when it failed the proof, short otherwise."""
        if isinstance(err, NotTheCoordinator):
            why, for_s = f"not the coordinator: {err}", self.settings.reject_for_s
        else:
            why, for_s = f"unreachable: {err or type(err).__name__}", UNREACHABLE_RETRY_S
        self._rejected[url] = (time.monotonic() + for_s, why[:200])

    def _next(self) -> str | None:
        now = time.monotonic()
        for candidate in self.browser.candidates():
            until, _ = self._rejected.get(candidate.url, (0.0, ""))
            if until <= now:
                return candidate.url
        return None

    async def locate(self) -> str:
        """The next candidate to try; waits until one is advertised (or a rejection ends)."""
        while True:
            self.browser.changed.clear()
            url = self._next()
            if url is not None:
                return url
            now = time.monotonic()
            ends = [until - now for until, _ in self._rejected.values() if until > now]
            wait_s = min([1.0, *ends])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.browser.changed.wait(), timeout=max(wait_s, 0.05))

    async def join(
        self,
        client: httpx.AsyncClient,
        base: str,
        req: JoinRequest,
        key: Ed25519PrivateKey,
    ) -> tuple[JoinResponse, str]:
        """Handshake, verify the coordinator's proof, then join with ours; the answer and
        the address the coordinator saw. NotTheCoordinator when the proof fails."""
        token = self.fleet_token
        client_nonce = fleetproof.new_nonce()
        ask = json.dumps({"node_id": req.node_id, "client_nonce": client_nonce}).encode()
        status, data, local = await _post(
            client,
            base + "/api/v1/nodes/handshake",
            ask,
            {"Content-Type": "application/json"},
        )
        if status != 200:
            raise NotTheCoordinator(f"the handshake was answered {status}: {data[:120]!r}")
        try:
            hs = Handshake.model_validate_json(data)
        except ValidationError as err:
            raise NotTheCoordinator("the handshake's answer is not a camfleet handshake") from err
        if not (_B64_32.fullmatch(hs.nonce) and _B64_32.fullmatch(hs.proof)):
            raise NotTheCoordinator("the handshake's nonce or proof is malformed")
        if hs.node_id != req.node_id or hs.fleet_id != self.fleet_id:
            raise NotTheCoordinator("the handshake names another node or fleet")
        expected = fleetproof.coordinator_proof(
            token, client_nonce, hs.nonce, req.node_id, self.fleet_id, hs.seen_address
        )
        if not fleetproof.same(expected, hs.proof):
            raise NotTheCoordinator("its proof does not verify: it does not hold the fleet token")
        if (
            self.settings.require_same_address
            and local is not None
            and not same_ip(hs.seen_address, local)
        ):
            raise NotTheCoordinator(
                f"it saw this node as {hs.seen_address!r:.60}, not {local}: a relay is in between"
            )
        assert req.api_token is not None  # the link's request always carries it
        sealed = fleetproof.seal(token, client_nonce, hs.nonce, req.node_id, req.api_token)
        body = req.model_copy(update={"api_token": None, "sealed_api_token": sealed})
        raw = body.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            NONCE_HEADER: hs.nonce,
            SIGNATURE_HEADER: sign(key, hs.nonce, raw),
            fleetproof.PROOF_HEADER: fleetproof.node_proof(
                token, client_nonce, hs.nonce, req.node_id, self.fleet_id
            ),
        }
        status, data, _ = await _post(client, base + "/api/v1/nodes/join", raw, headers)
        if status != 200:
            raise RuntimeError(f"coordinator answered {status}: {data[:200]!r}")
        return JoinResponse.model_validate_json(data), hs.seen_address
