"""Database work off the event loop: each unit of work gets its own short session in a thread.

The rule it enforces: no database session is held across an await on a node. A service
loads what it needs (``await store.run(fn)``), talks to nodes with no session open, then
saves in another short unit. Worker threads are capped at the engine's pool size, so a
burst of requests waits for a thread, never for a pooled connection while holding one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import Engine
from sqlmodel import Session

T = TypeVar("T")


class Store:
    """Runs ``fn(session)`` in a worker thread with a session of its own."""

    def __init__(self, engine: Engine, max_threads: int) -> None:
        self.engine = engine
        self._limiter = anyio.CapacityLimiter(max_threads)

    async def run(self, fn: Callable[[Session], T]) -> T:
        """One unit of work; it commits what it wants committed itself."""
        return await anyio.to_thread.run_sync(self.run_sync, fn, limiter=self._limiter)

    def run_sync(self, fn: Callable[[Session], T]) -> T:
        """The same, on the calling thread (start-up, tests, CLI)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return fn(session)


def pool_capacity(engine: Engine) -> int:
    """How many connections the engine's pool hands out at once (at least 1)."""
    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        return max(1, int(size()) + max(0, int(overflow)))
    return 4
