"""The agent's link to the coordinator: join at start, heartbeat, back off while it is away.

Nothing here touches the recorder: a coordinator that is down, slow or wrong only
changes ``state``; recordings go on regardless.

With ``coordinator_url`` the link joins there with the fleet token as a bearer. Without
it a ``Finder`` (node_agent.discovery) supplies advertised candidates and the mutual
join, in which the fleet token never travels; a failed candidate is set aside and the
next one tried, so a coordinator that moves is followed. ``wake()`` (the node's own
address changed) re-joins at once, so the coordinator follows the node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Literal

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.identity import NONCE_HEADER, SIGNATURE_HEADER, sign
from node_agent.backoff import backoff_s
from node_agent.discovery.schemas import LinkStatus
from node_agent.discovery.service import Finder
from node_agent.discovery.watch import AddressWatch
from node_agent.schemas import JoinChallenge, JoinRequest, JoinResponse

log = logging.getLogger(__name__)


class CoordinatorLink:
    """Joins the coordinator and keeps heartbeating."""

    def __init__(
        self,
        url: str | None,
        fleet_token: str,
        make_request: Callable[[], JoinRequest],
        interval_s: float,
        backoff_cap_s: float,
        key: Ed25519PrivateKey,
        finder: Finder | None = None,
        watch_interval_s: float | None = None,
    ) -> None:
        if url is None and finder is None:
            raise ValueError("a link needs a coordinator_url or a finder")
        self.base: str | None = url.rstrip("/") if url else None
        self.found_by: Literal["configured", "discovered"] = "configured" if url else "discovered"
        self.finder = finder
        self.fleet_token = fleet_token
        self.key = key
        self.make_request = make_request
        self.interval_s = interval_s
        self.backoff_cap_s = backoff_cap_s
        self.state = "retrying" if url else "searching"
        self.last_error: str | None = None
        self.seen_address: str | None = None
        self.last_join_ns: int | None = None
        self.joins_total = 0
        self.address_changes = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._side: set[asyncio.Task[None]] = set()
        self._renew = False
        self._client_in_use: httpx.AsyncClient
        if finder is not None:
            finder.browser.on_gone = self._advert_gone
        self.watch = (
            AddressWatch(watch_interval_s, self._addresses_changed) if watch_interval_s else None
        )

    @property
    def url(self) -> str:
        """The join URL (of the coordinator joined or tried now)."""
        return (self.base or "") + "/api/v1/nodes/join"

    @property
    def challenge_url(self) -> str:
        """The bearer path's challenge URL."""
        return (self.base or "") + "/api/v1/nodes/challenge"

    def wake(self) -> None:
        """Join again now, not at the next heartbeat (the node's address changed)."""
        self.address_changes += 1
        self._wake.set()

    def status(self) -> LinkStatus:
        """How the coordinator was found and how the link goes."""
        return LinkStatus(
            state=self.state,
            found_by=self.found_by,
            url=self.base,
            seen_address=self.seen_address,
            last_error=self.last_error or (self.finder.error if self.finder else None),
            last_join_ns=self.last_join_ns,
            joins_total=self.joins_total,
            address_changes=self.address_changes,
            candidates=len(self.finder.browser.candidates()) if self.finder else 0,
            rejected=self.finder.rejected() if self.finder else [],
        )

    async def beat(self, client: httpx.AsyncClient) -> JoinResponse:
        """One join/heartbeat; raises on any failure. A discovered coordinator only ever
        gets the mutual join: the fleet token never goes to it as a bearer."""
        if self.finder is not None:
            if self.base is None:
                raise RuntimeError("no coordinator of this fleet found yet")
            answer, seen = await self.finder.join(client, self.base, self.make_request(), self.key)
            self.seen_address = seen
            return answer
        return await self._bearer_beat(client)

    async def _bearer_beat(self, client: httpx.AsyncClient) -> JoinResponse:
        """Ask for a challenge, then join with the body signed. The node's API token
        travels only inside a signed join."""
        req = self.make_request()
        auth = {"Authorization": f"Bearer {self.fleet_token}"}
        asked = await client.post(self.challenge_url, json={"node_id": req.node_id}, headers=auth)
        if asked.status_code != 200:
            raise RuntimeError(f"coordinator answered {asked.status_code}: {asked.text[:200]}")
        nonce = JoinChallenge.model_validate_json(asked.content).nonce
        body = req.model_dump_json().encode()
        headers = auth | {
            "Content-Type": "application/json",
            NONCE_HEADER: nonce,
            SIGNATURE_HEADER: sign(self.key, nonce, body),
        }
        resp = await client.post(self.url, content=body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"coordinator answered {resp.status_code}: {resp.text[:200]}")
        answer = JoinResponse.model_validate_json(resp.content)
        self.seen_address = answer.address
        return answer

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    async def _run(self) -> None:
        if self.watch is not None:
            self.watch.start()
        if self.finder is not None:
            await self.finder.start()
        client = httpx.AsyncClient(timeout=5.0)
        try:
            await self._loop(client)
        finally:
            await self._client_in_use.aclose()

    async def _loop(self, client: httpx.AsyncClient) -> None:
        attempt = 0
        self._client_in_use = client
        while True:
            if self._renew:
                # Its kept-alive connection may start from an address that is gone.
                self._renew = False
                await client.aclose()
                client = self._client_in_use = httpx.AsyncClient(timeout=5.0)
            if self.base is None and self.finder is not None:
                self.state = "searching"
                self.base = await self.finder.locate()
            try:
                answer = await self.beat(client)
            except (httpx.HTTPError, RuntimeError, ValueError, OSError) as err:
                if self.state != "retrying" or attempt == 0:
                    log.warning("coordinator unreachable at %s: %s", self.url, err)
                self.last_error = str(err) or type(err).__name__
                first_s = 1.0
                if self.finder is not None and self.base is not None:
                    self.finder.failed(self.base, err)
                    self.base = None  # look again: it may have moved, or was a rogue
                    self._renew = True
                    first_s = 0.25
                self.state = "retrying"
                await self._pause(backoff_s(attempt + 1, first_s, self.backoff_cap_s))
                attempt += 1
                continue
            if self.state != "joined":
                log.info(
                    "joined the coordinator at %s as %s from %s (%s)",
                    self.base,
                    answer.node_id,
                    answer.address,
                    self.found_by,
                )
            self.state, self.last_error, attempt = "joined", None, 0
            self.joins_total += 1
            self.last_join_ns = time.time_ns()
            await self._pause(min(self.interval_s, answer.heartbeat_interval_s))

    def _advert_gone(self, urls: set[str]) -> None:
        """The coordinator in use stopped advertising that address: try it now (it fails
        if it moved, and the link looks again) instead of at the next heartbeat."""
        if self.base in urls:
            self._wake.set()

    def _addresses_changed(self, _old: object, _new: object) -> None:
        self._renew = True
        self.wake()
        if self.finder is not None:
            task = asyncio.get_running_loop().create_task(self.finder.addresses_changed())
            self._side.add(task)
            task.add_done_callback(self._side.discard)

    def start(self) -> None:
        """Begin joining in the background."""
        self._task = asyncio.create_task(self._run(), name="coordinator-link")

    async def stop(self) -> None:
        """Stop heartbeating, watching and browsing."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.watch is not None:
            await self.watch.stop()
        for task in list(self._side):
            task.cancel()
        if self.finder is not None:
            await self.finder.stop()


def hostname() -> str:
    """This machine's short host name."""
    return socket.gethostname().split(".")[0]
