"""The one fan-out entry point: every call from the coordinator to a node goes through here.

It gives each node a concurrency cap and a queue limit (a slow node gets one call at a
time, and a caller that would wait past its deadline fails fast with the reason), runs
each call under a deadline, turns every failure into that node's result, and does the
bookkeeping once: contact and failures into ``FleetState``, latency into the histogram,
and a status refresh after a command that changes what the node shows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.fleet.client import AgentClient, NodeAddress, NodeCall
from app.fleet.state import FleetState

T = TypeVar("T")

# Commands whose round trip says how far ahead a start must be scheduled.
RTT_COMMANDS = frozenset({"start", "status"})
# Commands that should answer in well under a second; one that takes longer marks its
# node slow (one call at a time) until it answers one quickly again. Stops, self-tests and
# timelapse stops take seconds by design and say nothing about the node's health.
QUICK_COMMANDS = frozenset(
    {
        "status",
        "start",
        "beep",
        "audio",
        "recordings",
        "lockview",
        "preview",
        "timelapse_status",
        "timelapse_start",
    }
)
# Commands that go ahead of everything else waiting for a node: on a slow node a stop must
# not starve behind a queue of previews and polls.
PRIORITY_COMMANDS = frozenset({"start", "beep", "stop", "abort", "timelapse_stop", "shutdown"})
# Commands after which the node's status has changed and is re-read at once.
REFRESH_COMMANDS = frozenset(
    {
        "start",
        "stop",
        "abort",
        "audio",
        "selftest",
        "timelapse_start",
        "timelapse_stop",
        "confirm",  # the disk card's bytes not yet offloaded
        "delete_offloaded",
        "config_put",  # camera.audio, the timelapse's interval
        "shutdown",  # power.shutting_down
    }
)


@dataclass
class _Gate:
    """Calls in flight to one node, and whether it has been slow lately."""

    in_flight: int = 0
    waiting: int = 0
    waiting_priority: int = 0
    slow: bool = False
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)


class Fanout:
    """Calls nodes with per-node caps and deadlines; one result per node, always."""

    def __init__(
        self,
        client: AgentClient,
        state: FleetState,
        *,
        per_node_limit: int = 4,
        queue_limit: int = 32,
        slow_after_s: float = 1.0,
        on_latency: Callable[[str, float], None] | None = None,
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.client = client
        self.state = state
        self.per_node_limit = per_node_limit
        self.queue_limit = queue_limit
        self.slow_after_s = slow_after_s
        self.on_latency = on_latency
        self.on_result = on_result  # (command, outcome) of every call, for the metrics
        self.on_changed: Callable[[list[str]], None] | None = None
        self._gates: dict[str, _Gate] = {}

    def _gate(self, node_id: str) -> _Gate:
        gate = self._gates.get(node_id)
        if gate is None:
            gate = self._gates[node_id] = _Gate()
        return gate

    def forget(self, node_id: str) -> None:
        """A node was removed: drop its gate (calls under way finish on their own)."""
        self._gates.pop(node_id, None)

    def in_flight(self, node_id: str) -> int:
        """Calls to ``node_id`` under way or queued."""
        gate = self._gates.get(node_id)
        return gate.in_flight + gate.waiting if gate else 0

    async def call(
        self,
        node: NodeAddress,
        command: str,
        fn: Callable[[NodeAddress], Awaitable[NodeCall[T]]],
        deadline_s: float | None = None,
    ) -> NodeCall[T]:
        """One call to one node through its gate; never raises (but for cancellation)."""
        deadline = deadline_s if deadline_s is not None else self.client.timeout_s
        gate = self._gate(node.node_id)
        t0 = time.perf_counter()
        priority = command in PRIORITY_COMMANDS
        if gate.waiting >= self.queue_limit and not priority:
            return self._note(
                command,
                _refused(
                    node,
                    t0,
                    f"node is saturated: {gate.in_flight} calls under way and "
                    f"{gate.waiting} waiting; try again when it has answered them",
                ),
            )
        gate.waiting += 1
        gate.waiting_priority += priority
        entered = False

        def may_go() -> bool:
            room = gate.in_flight < (1 if gate.slow else self.per_node_limit)
            return room and (priority or gate.waiting_priority == 0)

        try:
            async with asyncio.timeout(deadline), gate.changed:
                await gate.changed.wait_for(may_go)
                gate.in_flight += 1
                entered = True
        except TimeoutError:
            return self._note(
                command,
                _refused(
                    node,
                    t0,
                    f"node is slow: {gate.in_flight} earlier calls did not finish "
                    f"within {deadline:g} s, so this one was not sent",
                ),
            )
        finally:
            gate.waiting -= 1
            gate.waiting_priority -= priority
            if priority and not entered:
                # Calls held back for this one may go now.
                async with gate.changed:
                    gate.changed.notify_all()
        try:
            try:
                result = await fn(node)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # the client never raises; this guards a bug in it
                result = _refused(node, t0, f"internal error calling the node: {err!r}"[:300])
        finally:
            gate.in_flight -= 1
            async with gate.changed:
                gate.changed.notify_all()
        if result.status_code is None:
            gate.slow = True
        elif command in QUICK_COMMANDS:
            gate.slow = result.latency_ms / 1000 > self.slow_after_s
        return self._note(command, result)

    def _note(self, command: str, call: NodeCall[T]) -> NodeCall[T]:
        """Contact, failure and latency bookkeeping for one result."""
        answered = call.ok or (call.status_code is not None and 400 <= call.status_code < 500)
        if answered:
            rtt = call.latency_ms if command in RTT_COMMANDS else None
            self.state.contact(call.node_id, rtt)
        if not call.ok:
            self.state.failure(call.node_id, f"{command}: {call.error or 'failed'}")
        if self.on_latency is not None and call.status_code is not None:
            self.on_latency(command, call.latency_ms / 1000)
        if self.on_result is not None:
            self.on_result(command, outcome(call))
        return call

    async def each(
        self,
        nodes: Sequence[NodeAddress],
        command: str,
        fn: Callable[[NodeAddress], Awaitable[NodeCall[T]]],
        deadline_s: float | None = None,
    ) -> list[NodeCall[T]]:
        """``fn`` on every node at once; one result per node, in the given order."""
        calls = list(await asyncio.gather(*(self.call(n, command, fn, deadline_s) for n in nodes)))
        if command in REFRESH_COMMANDS and self.on_changed is not None:
            self.on_changed([c.node_id for c in calls if c.ok])
        return calls


def outcome(call: NodeCall[Any]) -> str:
    """``ok``, ``refused`` (the node said no: 4xx), ``failed`` (5xx) or ``unreachable``."""
    if call.ok:
        return "ok"
    if call.status_code is None:
        return "unreachable"
    return "refused" if 400 <= call.status_code < 500 else "failed"


def _refused(node: NodeAddress, t0: float, error: str) -> NodeCall[Any]:
    latency_ms = round((time.perf_counter() - t0) * 1000, 3)
    return NodeCall(node.node_id, False, latency_ms, None, error)
