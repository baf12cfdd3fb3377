"""Join challenges: single-use nonces the coordinator hands out and a join must sign."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from common.identity import b64

CHALLENGE_TTL_S = 30.0
# Bounds memory whatever a client asks for: the oldest challenges are dropped first.
MAX_OUTSTANDING = 10_000
MAX_PER_NODE = 4


class Challenges:
    """Outstanding nonces by node id, each good for one join within its time to live."""

    def __init__(self, ttl_s: float = CHALLENGE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._issued: OrderedDict[str, tuple[str, float]] = OrderedDict()  # nonce -> node, expiry
        self._by_node: dict[str, list[str]] = {}

    def issue(self, node_id: str) -> str:
        """A fresh nonce for ``node_id``."""
        now = time.monotonic()
        self._expire(now)
        mine = self._by_node.setdefault(node_id, [])
        while len(mine) >= MAX_PER_NODE:
            self._issued.pop(mine.pop(0), None)
        while len(self._issued) >= MAX_OUTSTANDING:
            self._drop(*self._issued.popitem(last=False))
        nonce = b64(secrets.token_bytes(32))
        self._issued[nonce] = (node_id, now + self.ttl_s)
        self._by_node.setdefault(node_id, []).append(nonce)
        return nonce

    def redeem(self, node_id: str, nonce: str) -> bool:
        """True once for a nonce issued to ``node_id`` and not yet expired; it is spent."""
        entry = self._issued.pop(nonce, None)
        if entry is None:
            return False
        self._drop(nonce, entry)
        return entry[0] == node_id and entry[1] >= time.monotonic()

    def forget(self, node_id: str) -> None:
        """Drop every nonce of a removed node."""
        for nonce in self._by_node.pop(node_id, []):
            self._issued.pop(nonce, None)

    def _drop(self, nonce: str, entry: tuple[str, float]) -> None:
        mine = self._by_node.get(entry[0])
        if mine is not None:
            if nonce in mine:
                mine.remove(nonce)
            if not mine:
                del self._by_node[entry[0]]

    def _expire(self, now: float) -> None:
        while self._issued:
            nonce, entry = next(iter(self._issued.items()))
            if entry[1] >= now:
                break
            del self._issued[nonce]
            self._drop(nonce, entry)
