"""The sync benchmark's trials: start-now and scheduled starts through the jittery network."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from app.fleet.client import AgentClient, NodeAddress, NodeCall
from bench.common import BenchError, session_id, start_all, stop_all_nodes
from bench.sync_fleet import Fleet
from bench.sync_result import MODES, NodeTrial, SyncResult, Trial
from node_agent.schemas import StartResult, StopResult

T = TypeVar("T")

# The latest a node may start after start_at: its uncorrected clock may be 40 ms off.
SLACK_S = 0.1
# A node whose true first frame is this far past start_at armed too late (it started at
# once on arrival): more than the largest shift plus a few frames.
LATE_NS = 150_000_000
# The lead adapts as the coordinator's does: at least this factor times the slowest
# arm time of the last few trials (a loaded machine arms slowly), at most MAX_LEAD_MS.
LEAD_FACTOR = 2.0
MAX_LEAD_MS = 10_000


def _check(calls: list[NodeCall[StartResult]] | list[NodeCall[StopResult]], what: str) -> None:
    bad = [c for c in calls if not c.ok or c.value is None]
    if bad:
        details = "; ".join(f"{c.node_id}: {c.status_code} {c.error}" for c in bad[:5])
        raise BenchError(f"{what} failed on {len(bad)} of {len(calls)} nodes: {details}")


async def _with_retry(
    call: Callable[[list[NodeAddress]], Awaitable[list[NodeCall[T]]]],
    nodes: list[NodeAddress],
    retried: list[str],
) -> list[NodeCall[T]]:
    """``call`` on every node, then once more on those that were unreachable. Commands
    are idempotent by command id, so the retry is safe. It was needed while agents closed
    a keep-alive connection idle for 5 s (uvicorn's default): through a delaying link the
    close reached the client after it had reused the connection. Agents now keep idle
    connections 75 s; the retry stays as a guard and its count is reported."""
    calls = await call(nodes)
    again = [n for n, c in zip(nodes, calls, strict=True) if not c.ok and c.status_code is None]
    if not again:
        return calls
    retried.extend(n.node_id for n in again)
    redo = {c.node_id: c for c in await call(again)}
    return [redo.get(c.node_id, c) for c in calls]


def _clock_warnings(result: StartResult | None) -> int:
    return 0 if result is None else sum(1 for w in result.warnings if "clock" in w.lower())


async def _trial(
    client: AgentClient,
    fleet: Fleet,
    nodes: list[NodeAddress],
    mode: str,
    lead_ns: int,
    run_s: float,
) -> Trial:
    session = session_id(f"sy{len(nodes)}-{mode[:3]}")
    start_at = time.time_ns() + lead_ns if mode == "scheduled" else None
    t0 = time.perf_counter()
    retried: list[str] = []
    started = await _with_retry(
        lambda some: start_all(client, some, session, start_at), nodes, retried
    )
    trial = Trial(mode, start_at, arm_s=time.perf_counter() - t0, lead_ns=lead_ns)
    try:
        _check(started, f"start of {session}")
        instant = start_at if start_at is not None else time.time_ns()
        await asyncio.sleep(max(0.0, (instant - time.time_ns()) / 1e9 + SLACK_S + run_s))
    finally:
        stopped = await _with_retry(
            lambda some: stop_all_nodes(client, some, session, 30), nodes, retried
        )
    trial.retried = retried
    _check(stopped, f"stop of {session}")
    readings = await asyncio.to_thread(lambda: [n.reading() for n in fleet.nodes])
    by_id = {c.node_id: c for c in started}
    for node, call, reading in zip(fleet.nodes, stopped, readings, strict=True):
        manifest = call.value.manifest if call.value else None
        if manifest is None:
            raise BenchError(f"{call.node_id} returned no manifest for {session}")
        trial.nodes.append(
            NodeTrial(
                shift_ns=node.shift_ns,
                first_frame_ns=manifest.first_frame_ns,
                offset_ns=manifest.clock_offset_ns,
                manifest_bound_ns=manifest.clock_error_bound_ns,
                synchronized=manifest.clock_synchronized,
                read_offset_ns=reading.offset_ns if reading else None,
                read_bound_ns=reading.bound_ns if reading else None,
                read_residual_ns=reading.residual_bound_ns if reading else None,
                clock_warnings=_clock_warnings(by_id[node.node_id].value),
            )
        )
    if start_at is not None:
        starts = [by_id[c.node_id].value for c in stopped]
        trial.late = sum(
            1
            for n, r in zip(trial.nodes, starts, strict=True)
            if n.true_ns - start_at > LATE_NS or (r is not None and r.late_ns > 0)
        )
    return trial


def _lead_ns(base_ms: int, arms_s: list[float]) -> int:
    recent = arms_s[-5:]
    adapted = LEAD_FACTOR * max(recent) * 1e3 if recent else 0.0
    return round(min(max(base_ms, adapted), MAX_LEAD_MS) * 1e6)


async def run_trials(
    fleet: Fleet, trials: int, lead_ms: int, run_s: float, out: SyncResult
) -> None:
    """One unmeasured warm-up start, then ``trials`` of each mode, alternating which first."""
    nodes = [n.address for n in fleet.nodes if n.address is not None]
    client = AgentClient(timeout_s=30)
    arms: list[float] = []
    try:
        warm = await client.fan_out(nodes, client.status)
        if not all(c.ok for c in warm):
            raise BenchError(f"status failed: {[c.error for c in warm if not c.ok][:3]}")
        warmup = await _trial(client, fleet, nodes, "now", 0, run_s)
        arms.append(warmup.arm_s)
        for i in range(trials):
            for mode in MODES if i % 2 == 0 else MODES[::-1]:
                lead_ns = _lead_ns(lead_ms, arms)
                trial = await _trial(client, fleet, nodes, mode, lead_ns, run_s)
                arms.append(trial.arm_s)
                out.trials.append(trial)
                print(
                    f"  sync {mode:<9} trial {i + 1:>2}: spread uncorrected "
                    f"{trial.raw_spread_ns / 1e6:7.3f} ms, corrected "
                    f"{trial.fleet_spread_ns / 1e6:7.3f} ms, true {trial.true_spread_ns / 1e6:7.3f}"
                    f" ms (arm {trial.arm_s * 1e3:.0f} ms"
                    + (
                        f", lead {lead_ns / 1e6:.0f} ms, {trial.late} late)"
                        if trial.start_at_ns
                        else ")"
                    ),
                    flush=True,
                )
    finally:
        await client.aclose()
