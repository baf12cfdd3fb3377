"""The agent's link to the coordinator: join at start, heartbeat, back off while it is away.

Nothing here touches the recorder: a coordinator that is down, slow or wrong only
changes ``state``; recordings go on regardless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.identity import NONCE_HEADER, SIGNATURE_HEADER, sign
from node_agent.backoff import backoff_s
from node_agent.schemas import JoinChallenge, JoinRequest, JoinResponse

log = logging.getLogger(__name__)


class CoordinatorLink:
    """Joins the coordinator and keeps heartbeating."""

    def __init__(
        self,
        url: str,
        fleet_token: str,
        make_request: Callable[[], JoinRequest],
        interval_s: float,
        backoff_cap_s: float,
        key: Ed25519PrivateKey,
    ) -> None:
        base = url.rstrip("/")
        self.url = base + "/api/v1/nodes/join"
        self.challenge_url = base + "/api/v1/nodes/challenge"
        self.fleet_token = fleet_token
        self.key = key
        self.make_request = make_request
        self.interval_s = interval_s
        self.backoff_cap_s = backoff_cap_s
        self.state = "retrying"
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def beat(self, client: httpx.AsyncClient) -> JoinResponse:
        """One join/heartbeat: ask for a challenge, then join with the body signed; raises on
        any failure. The node's API token travels only inside a signed join."""
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
        return JoinResponse.model_validate_json(resp.content)

    async def _run(self) -> None:
        attempt = 0
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                try:
                    answer = await self.beat(client)
                except (httpx.HTTPError, RuntimeError, ValueError, OSError) as err:
                    if self.state != "retrying" or attempt == 0:
                        log.warning("coordinator unreachable at %s: %s", self.url, err)
                    self.state = "retrying"
                    self.last_error = str(err) or type(err).__name__
                    await asyncio.sleep(backoff_s(attempt + 1, 1.0, self.backoff_cap_s))
                    attempt += 1
                    continue
                if self.state != "joined":
                    log.info("joined the coordinator as %s from %s", answer.node_id, answer.address)
                self.state, self.last_error, attempt = "joined", None, 0
                await asyncio.sleep(min(self.interval_s, answer.heartbeat_interval_s))

    def start(self) -> None:
        """Begin joining in the background."""
        self._task = asyncio.create_task(self._run(), name="coordinator-link")

    async def stop(self) -> None:
        """Stop heartbeating."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def hostname() -> str:
    """This machine's short host name."""
    return socket.gethostname().split(".")[0]
