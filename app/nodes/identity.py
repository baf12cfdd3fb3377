"""Join challenges: single-use nonces the coordinator hands out and a join must answer.

The same store serves the bearer path (``POST /api/v1/nodes/challenge``) and, as a second
instance, the mutual handshake of discovered coordinators (``POST
/api/v1/nodes/handshake``), whose entries also remember the agent's client nonce.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

from common.identity import b64

CHALLENGE_TTL_S = 30.0
# Bounds memory whatever a client asks for: the oldest challenges are dropped first.
MAX_OUTSTANDING = 10_000
MAX_PER_NODE = 4


@dataclass(frozen=True)
class Issued:
    """One outstanding nonce: for which node, until when, and the client's nonce if any."""

    node_id: str
    expires: float  # time.monotonic()
    client_nonce: str | None = None


class Challenges:
    """Outstanding nonces by node id, each good for one join within its time to live."""

    def __init__(self, ttl_s: float = CHALLENGE_TTL_S, max_outstanding: int = MAX_OUTSTANDING):
        self.ttl_s = ttl_s
        self.max_outstanding = max_outstanding
        self._issued: OrderedDict[str, Issued] = OrderedDict()
        self._by_node: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self._issued)

    def issue(self, node_id: str, client_nonce: str | None = None) -> str:
        """A fresh nonce for ``node_id`` (remembering ``client_nonce`` with it)."""
        now = time.monotonic()
        self._expire(now)
        mine = self._by_node.setdefault(node_id, [])
        while len(mine) >= MAX_PER_NODE:
            self._issued.pop(mine.pop(0), None)
        while len(self._issued) >= self.max_outstanding:
            self._drop(*self._issued.popitem(last=False))
        nonce = b64(secrets.token_bytes(32))
        self._issued[nonce] = Issued(node_id, now + self.ttl_s, client_nonce)
        self._by_node.setdefault(node_id, []).append(nonce)
        return nonce

    def peek(self, nonce: str) -> Issued | None:
        """The live entry of ``nonce`` without spending it (None: unknown, used or expired)."""
        entry = self._issued.get(nonce)
        if entry is None or entry.expires < time.monotonic():
            return None
        return entry

    def take(self, node_id: str, nonce: str) -> Issued | None:
        """The entry, once, for a nonce issued to ``node_id`` and not yet expired; it is
        spent whatever the outcome."""
        entry = self._issued.pop(nonce, None)
        if entry is None:
            return None
        self._drop(nonce, entry)
        if entry.node_id != node_id or entry.expires < time.monotonic():
            return None
        return entry

    def redeem(self, node_id: str, nonce: str) -> bool:
        """True once for a nonce issued to ``node_id`` and not yet expired; it is spent."""
        return self.take(node_id, nonce) is not None

    def forget(self, node_id: str) -> None:
        """Drop every nonce of a removed node."""
        for nonce in self._by_node.pop(node_id, []):
            self._issued.pop(nonce, None)

    def _drop(self, nonce: str, entry: Issued) -> None:
        mine = self._by_node.get(entry.node_id)
        if mine is not None:
            if nonce in mine:
                mine.remove(nonce)
            if not mine:
                del self._by_node[entry.node_id]

    def _expire(self, now: float) -> None:
        while self._issued:
            nonce, entry = next(iter(self._issued.items()))
            if entry.expires >= now:
                break
            del self._issued[nonce]
            self._drop(nonce, entry)
