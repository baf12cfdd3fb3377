"""FleetWatch: one long-lived task per node holding its status stream.

Each status a node pushes goes into the same cache the poller fills (``FleetState``), so
the live events publish it at once; a heartbeat comment every second proves the node is
alive. When the stream breaks, or nothing arrives for ``heartbeat_timeout_s``, the node
is probed once (one status call, a short deadline): if that fails too, the node is
marked offline at once, not ``offline_after_s`` later. Then the stream is reopened with
backoff; a node that re-joins (it restarted) is tried again at once.

Nothing a node sends is trusted: the answer's head and each event within the heartbeat
deadline, a line and an event within the status call's size cap, at most
``max_events_per_s`` events a second, each status validated by the wire model and
naming this node. A node breaking a rule loses its stream (its reason logged) and is
retried with growing backoff; it cannot stall another node's task. A node answering
404 (an agent older than the stream) is polled as before and asked again now and then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from app.fleet.client import MAX_ANSWER_BYTES, NodeAddress
from app.fleet.fanout import Fanout
from app.fleet.sse import SseParser, StreamProblem
from app.fleet.state import FleetState
from app.fleet.transport import TransportError
from app.fleet.wire import NodeStatus

log = logging.getLogger(__name__)

PATH = "/api/v1/status/stream"
FIRST_BACKOFF_S = 0.2
# A stream that stayed healthy this long starts the backoff over.
HEALTHY_AFTER_S = 10.0
# An older agent (404) is asked again this often.
NOT_OFFERED_RETRY_S = 300.0
# A stream is renewed after this many bytes (a connection never grows without end).
RENEW_AFTER_BYTES = 256 * 1024 * 1024
SYNC_EVERY_S = 0.25
# A wake-up this late past the heartbeat deadline means this process was stalled.
STALL_S = 0.2


@dataclass
class WatchConfig:
    """The watch's limits (from the coordinator's settings)."""

    heartbeat_timeout_s: float = 1.5
    probe_timeout_s: float = 1.0
    backoff_max_s: float = 10.0
    max_events_per_s: int = 20
    max_event_bytes: int = MAX_ANSWER_BYTES["status"]


class _Ended(Exception):
    """The stream ended; ``reason`` says why, ``renew`` when that was by design."""

    def __init__(self, reason: str, renew: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.renew = renew


@dataclass(eq=False)
class NodeWatch:
    """The watch of one node at one address."""

    addr: NodeAddress
    live: bool = False  # the stream is up and has brought a status
    offered: bool = True  # False after a 404: the node is only polled
    down_at_ns: int | None = None  # when the watch marked it offline
    last_reason: str | None = None
    failures: int = 0
    kick: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class FleetWatch:
    """Starts, follows and stops a watch per known node."""

    def __init__(self, fanout: Fanout, state: FleetState, config: WatchConfig) -> None:
        self.fanout = fanout
        self.state = state
        self.config = config
        self.watches: dict[str, NodeWatch] = {}
        self._task: asyncio.Task[None] | None = None

    def watched(self, node_id: str) -> bool:
        """True while the node's stream is up (the poller may read it less often)."""
        w = self.watches.get(node_id)
        return w is not None and w.live

    def sync(self) -> None:
        """Follow the address book: a watch per node, restarted when its address changed;
        a node marked offline by its watch that joined again since is tried at once."""
        for node_id, addr in list(self.state.addresses.items()):
            w = self.watches.get(node_id)
            if w is not None and w.addr != addr:
                self._end(w)
                w = None
            if w is None:
                w = self.watches[node_id] = NodeWatch(addr)
                w.task = asyncio.create_task(self._run(w), name=f"watch-{node_id}")
                continue
            entry = self.state.cache.get(node_id)
            if w.down_at_ns is not None and entry is not None:
                seen = max(entry.last_heartbeat_ns or 0, entry.last_contact_ns or 0)
                if seen > w.down_at_ns:
                    w.down_at_ns = None
                    w.kick.set()
        for node_id in self.watches.keys() - self.state.addresses.keys():
            self._end(self.watches.pop(node_id))

    def _end(self, w: NodeWatch) -> None:
        w.live = False
        if w.task is not None:
            w.task.cancel()

    async def _run(self, w: NodeWatch) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            opened = time.monotonic()
            try:
                await self._hold(w)
                reason, renew = "the node ended the stream", False
            except _Ended as end:
                reason, renew = end.reason, end.renew
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug here must not end the watch for good
                log.exception("watch of %s failed", w.addr.node_id)
                reason, renew = f"internal error: {err!r}"[:300], False
            was_live, w.live = w.live, False
            if not w.offered:
                await self._pause(w, NOT_OFFERED_RETRY_S)
                continue
            if renew:
                continue
            if time.monotonic() - opened > HEALTHY_AFTER_S:
                backoff = FIRST_BACKOFF_S
                w.failures, w.last_reason = 0, None
            await self._lost(w, reason, was_live)
            await self._pause(w, backoff)
            backoff = min(backoff * 2, self.config.backoff_max_s)

    async def _pause(self, w: NodeWatch, delay_s: float) -> None:
        w.kick.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(w.kick.wait(), delay_s)

    async def _lost(self, w: NodeWatch, reason: str, was_live: bool) -> None:
        """The stream is gone: probe once; offline at once if the probe fails too.

        A probe that timed out on a node whose stream never came up says only that the
        node is slow (it may answer in 5 s): that is left to the poller and
        ``offline_after_s``. A stream that was up and then broke or went silent, or a
        connection refused or reset, is a node gone."""
        node_id = w.addr.node_id
        # Straight to the node, not through the fan-out's gate: a node whose gate holds
        # a slow command must not be called dead because the probe had to wait.
        probe = await self.fanout.client.status(w.addr, self.config.probe_timeout_s)
        w.failures += 1
        repeat = reason == w.last_reason
        w.last_reason = reason
        if probe.status_code is not None:  # it answered: alive, whatever its stream did
            self.state.contact(node_id)
            if probe.ok and probe.value is not None:
                self.state.set_status(node_id, probe.value)
            (log.debug if repeat else log.warning)(
                "status stream of %s: %s; the node answers a status call, so it stays "
                "online and its stream is retried later (attempt %d)",
                node_id,
                reason,
                w.failures,
            )
            return
        timed_out = probe.latency_ms >= self.config.probe_timeout_s * 900
        if timed_out and not was_live:
            (log.debug if repeat else log.warning)(
                "status stream of %s: %s; the probe timed out too (%s): a slow node, left "
                "to the poller; its stream is retried later (attempt %d)",
                node_id,
                reason,
                probe.error,
                w.failures,
            )
            return
        was_online = self.state.online(node_id)
        self.state.mark_offline(node_id, f"status stream: {reason}; probe: {probe.error}")
        w.down_at_ns = time.time_ns()
        (log.warning if was_online or not repeat else log.debug)(
            "node %s offline: status stream: %s; probe: %s", node_id, reason, probe.error
        )

    async def _hold(self, w: NodeWatch) -> None:
        """Hold the stream until it ends (returns) or breaks a rule (_Ended)."""
        cfg = self.config
        addr = w.addr
        headers = {"Authorization": f"Bearer {addr.api_token}", "Accept": "text/event-stream"}
        transport = self.fanout.client.transport
        try:
            async with transport.stream(
                addr.host,
                addr.port,
                "GET",
                PATH,
                headers,
                # The head within this; after it, _next_chunk keeps the heartbeat deadline.
                idle_timeout_s=cfg.heartbeat_timeout_s * 2,
                max_bytes=RENEW_AFTER_BYTES + cfg.max_event_bytes * 2,
            ) as answer:
                if answer.status == 404:
                    if w.offered:
                        log.info("node %s offers no status stream; it is polled", addr.node_id)
                    w.offered = False
                    return
                if answer.status >= 400:
                    raise _Ended(f"the stream was refused with {answer.status}")
                if not answer.content_type.startswith("text/event-stream"):
                    raise _Ended(f"the stream is {answer.content_type or 'untyped'}, not events")
                w.offered = True
                await self._read(w, answer.chunks())
        except TransportError as err:
            raise _Ended(str(err)) from err
        except TimeoutError as err:
            raise _Ended(f"no answer within {cfg.heartbeat_timeout_s * 2:g} s") from err
        except OSError as err:
            raise _Ended(f"{type(err).__name__}: {err}"[:300]) from err

    async def _read(self, w: NodeWatch, chunks: Any) -> None:
        cfg = self.config
        node_id = w.addr.node_id
        parser = SseParser(cfg.max_event_bytes + 1024, cfg.max_event_bytes)
        iterator = chunks.__aiter__()
        alive_at = time.monotonic()
        window_at, in_window, total = alive_at, 0, 0
        while True:
            try:
                chunk = await self._next_chunk(iterator, alive_at)
            except StopAsyncIteration:
                return
            total += len(chunk)
            if total > RENEW_AFTER_BYTES:
                raise _Ended("renewed after its byte budget", renew=True)
            try:
                events = parser.feed(chunk)
            except StreamProblem as err:
                raise _Ended(str(err)) from err
            now = time.monotonic()
            if now - window_at >= 1.0:
                window_at, in_window = now, 0
            in_window += len(events)
            if in_window > cfg.max_events_per_s:
                raise _Ended(f"over {cfg.max_events_per_s} events in a second")
            for event in events:
                alive_at = now
                if event.kind == "comment":
                    self.state.touch(node_id)
                    continue
                if event.kind != "status":
                    continue
                try:
                    status = NodeStatus.model_validate_json(event.data)
                except ValidationError as err:
                    first = err.errors()[0]
                    where = ".".join(str(p) for p in first["loc"]) or "(body)"
                    raise _Ended(
                        f"a status event that is not a status: first at {where}: {first['msg']}"
                    ) from err
                if status.node_id != node_id:
                    raise _Ended(f"a status of another node ({status.node_id})")
                self.state.contact(node_id)
                self.state.set_status(node_id, status)
                w.live = True

    async def _next_chunk(self, iterator: Any, alive_at: float) -> bytes:
        """The next piece of the stream, or _Ended when the heartbeat deadline passed.

        The read is not cancelled at the deadline straight away: when this process itself
        was stalled (a loaded machine), the deadline's timer and the data that did arrive
        wake it at the same moment, so a late wake-up gets one more short look first.
        """
        timeout_s = self.config.heartbeat_timeout_s
        pending = asyncio.ensure_future(iterator.__anext__())
        try:
            while True:
                deadline = alive_at + timeout_s
                done, _ = await asyncio.wait(
                    {pending}, timeout=max(0.0, deadline - time.monotonic())
                )
                if done:
                    chunk: bytes = pending.result()
                    return chunk
                late = time.monotonic() - deadline
                if late > STALL_S:
                    alive_at = time.monotonic() - timeout_s + STALL_S  # look once more
                    continue
                raise _Ended(f"no event or heartbeat for {timeout_s:g} s")
        finally:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(BaseException):
                    await pending

    async def _loop(self) -> None:
        while True:
            try:
                self.sync()
            except Exception:
                log.exception("watch: following the address book failed")
            await asyncio.sleep(SYNC_EVERY_S)

    def start(self) -> None:
        """Begin watching every known node."""
        self.sync()
        self._task = asyncio.create_task(self._loop(), name="fleet-watch")

    async def stop(self) -> None:
        """Close every stream (at once: the tasks are cancelled)."""
        tasks = [w.task for w in self.watches.values() if w.task is not None]
        if self._task is not None:
            tasks.append(self._task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.watches.clear()
