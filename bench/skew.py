"""Benchmark 1, start skew: how far apart N agent processes take their first frame."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.fleet.client import AgentClient, NodeAddress, NodeCall
from bench.common import (
    LOOPBACK,
    NO_CHRONYC,
    BenchError,
    Children,
    free_port,
    log_tail,
    median,
    percentile,
    session_id,
    spawn_agent,
    start_all,
    stop_all_nodes,
    wait_listening,
)
from node_agent.schemas import StartResult, StopResult

MODES = ("now", "scheduled")
RUN_AFTER_START_S = 0.3  # how long each trial records after its start instant
CAMERA = {
    "CAMFLEET_CAMERA__SOURCE": "synthetic",
    "CAMFLEET_CAMERA__WIDTH": "160",
    "CAMFLEET_CAMERA__HEIGHT": "120",
    "CAMFLEET_CAMERA__FPS": "30",
}


@dataclass
class SkewResult:
    """Every trial of one (N, mode)."""

    n: int
    mode: str
    lead_ms: float | None
    spreads_ns: list[int] = field(default_factory=list)
    lateness_ns: list[int] = field(default_factory=list)  # first_frame - start_at, every node
    arm_s: list[float] = field(default_factory=list)  # send to last start answer, per trial
    margin_ns: list[int] = field(default_factory=list)  # start_at - last start answer
    late_arms: int = 0  # nodes whose start arrived after start_at (they began at once)
    first_arm_s: float | None = None  # the warm-up trial: first start after the agents launched

    @property
    def trials(self) -> int:
        return len(self.spreads_ns)

    def spread_ms(self, p: float) -> float:
        return percentile(self.spreads_ns, p) / 1e6

    @property
    def lateness_p99_ms(self) -> float:
        return percentile(self.lateness_ns, 99) / 1e6

    @property
    def lateness_max_ms(self) -> float:
        return max(self.lateness_ns) / 1e6 if self.lateness_ns else float("nan")


def _check(calls: list[NodeCall[StartResult]] | list[NodeCall[StopResult]], what: str) -> None:
    bad = [c for c in calls if not c.ok or c.value is None]
    if bad:
        details = "; ".join(f"{c.node_id}: {c.status_code} {c.error}" for c in bad[:5])
        raise BenchError(f"{what} failed on {len(bad)} of {len(calls)} nodes: {details}")


async def _trial(
    client: AgentClient, nodes: list[NodeAddress], mode: str, lead_ns: int, out: SkewResult
) -> None:
    session = session_id(f"sk{len(nodes)}-{mode[:3]}")
    start_at = time.time_ns() + lead_ns if mode == "scheduled" else None
    t0 = time.perf_counter()
    started = await start_all(client, nodes, session, start_at)
    answered_ns = time.time_ns()
    out.arm_s.append(time.perf_counter() - t0)
    try:
        _check(started, f"start of {session}")
        results = [c.value for c in started if c.value is not None]
        if start_at is not None:
            out.margin_ns.append(start_at - answered_ns)
            # A start that arrives after its start_at begins at once: its start_at_ns is later.
            out.late_arms += sum(1 for r in results if r.start_at_ns > start_at)
        instant = start_at if start_at is not None else max(r.start_at_ns for r in results)
        await asyncio.sleep(max(0.0, (instant - time.time_ns()) / 1e9 + RUN_AFTER_START_S))
    finally:
        stopped = await stop_all_nodes(client, nodes, session, 30)
    _check(stopped, f"stop of {session}")
    firsts = []
    for call in stopped:
        manifest = call.value.manifest if call.value else None
        if manifest is None:
            raise BenchError(f"{call.node_id} returned no manifest for {session}")
        firsts.append(manifest.first_frame_ns)
        if start_at is not None:
            out.lateness_ns.append(manifest.first_frame_ns - start_at)
    out.spreads_ns.append(max(firsts) - min(firsts))


async def _run_n(
    nodes: list[NodeAddress], trials: int, lead_ns: int, results: dict[str, SkewResult]
) -> None:
    client = AgentClient(timeout_s=30)
    try:
        warm = await client.fan_out(nodes, client.status)
        if not all(c.ok for c in warm):
            raise BenchError(f"status failed: {[c.error for c in warm if not c.ok][:3]}")
        # One unmeasured trial first: the first start after launch loads the encoder
        # libraries in every agent; its arm time is reported on its own.
        warmup = SkewResult(len(nodes), "now", None)
        await _trial(client, nodes, "now", lead_ns, warmup)
        results["now"].first_arm_s = warmup.arm_s[0]
        for trial in range(trials):
            # Alternate which mode goes first so slow drift affects both alike.
            for mode in MODES if trial % 2 == 0 else MODES[::-1]:
                await _trial(client, nodes, mode, lead_ns, results[mode])
    finally:
        await client.aclose()


def run_skew(
    root: Path, children: Children, sizes: list[int], trials: int, leads_ms: dict[int, int]
) -> list[SkewResult]:
    """Start N real agent processes per size and run ``trials`` trials of each mode."""
    out: list[SkewResult] = []
    for n in sizes:
        base = root / f"skew-{n}"
        spawned = []
        logs = []
        try:
            for i in range(1, n + 1):
                cam = f"CAM_{i:02d}"
                data_dir = base / cam
                log = base / f"{cam}.log"
                port = free_port()
                env = {
                    "CAMFLEET_NODE_ID": f"skew-{n}-{i:02d}",
                    "CAMFLEET_CAM_ID": cam,
                    "CAMFLEET_DATA_DIR": str(data_dir),
                    "CAMFLEET_CHRONYC_PATH": NO_CHRONYC,
                    "CAMFLEET_GATES__CLOCK_POLICY": "warn",  # no chronyd here: the clock gate warns
                    "CAMFLEET_CLOCK_POLL_INTERVAL_S": "3600",
                } | CAMERA
                spawned.append(children.add(spawn_agent(cam, port, env, log)))
                logs.append(log)
            asyncio.run(
                wait_listening([c.port for c in spawned], spawned, logs, timeout_s=30 + 3 * n)
            )
            nodes = []
            for i, child in enumerate(spawned, start=1):
                token_file = base / child.name / "api_token"
                try:
                    token = token_file.read_text().strip()
                except OSError as err:
                    raise BenchError(f"no token in {token_file}: {err}") from err
                nodes.append(NodeAddress(f"skew-{n}-{i:02d}", LOOPBACK, child.port, token))
            lead = leads_ms[n]
            results = {
                "now": SkewResult(n, "now", None),
                "scheduled": SkewResult(n, "scheduled", float(lead)),
            }
            try:
                asyncio.run(_run_n(nodes, trials, lead * 1_000_000, results))
            except BenchError as err:
                raise BenchError(f"{err}\nlast agent log:\n{log_tail(logs[-1])}") from err
            out.extend(results[m] for m in MODES)
            for r in (results[m] for m in MODES):
                extra = (
                    f", lateness p99 {r.lateness_p99_ms:.3f} ms, arm max {max(r.arm_s) * 1e3:.1f} ms"
                    if r.mode == "scheduled"
                    else ""
                )
                print(
                    f"  skew N={n:<3} {r.mode:<9}: spread p50 {r.spread_ms(50):.3f} ms, "
                    f"p99 {r.spread_ms(99):.3f} ms, max {r.spread_ms(100):.3f} ms "
                    f"({r.trials} trials; arm median {median(r.arm_s) * 1e3:.1f} ms){extra}",
                    flush=True,
                )
        finally:
            children.stop(spawned)
    return out
