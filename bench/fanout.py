"""Benchmark 2, fan-out: one command to 50-200 agents, our client against raw sockets.

Two calls are timed. The headline is a *start* (``POST /api/v1/recording/start``),
whose time is dominated by every agent arming its camera and encoder. A *status*
(``GET /api/v1/status``) costs the agents little, so its rounds show what the client
and its transport themselves cost.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from app.fleet.client import AgentClient, NodeAddress
from bench.common import (
    LOOPBACK,
    BenchError,
    Children,
    RawConnection,
    command_id,
    free_port_range,
    log_tail,
    median,
    percentile,
    session_id,
    spawn_process,
    start_all,
    stop_all_nodes,
    wait_listening,
)

HOSTS = 4  # processes the agent apps are spread over
START_PATH = "/api/v1/recording/start"
STATUS_PATH = "/api/v1/status"
SCHEDULE_AHEAD_NS = 60_000_000_000  # far enough that nothing records before the stop


@dataclass
class Series:
    """The rounds of one call at one fleet size, both clients."""

    n: int
    ours_s: list[float] = field(default_factory=list)
    raw_s: list[float] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        return len(self.ours_s)

    @property
    def ratio(self) -> float:
        return median(self.ours_s) / median(self.raw_s)

    def per_node_us(self, which: str) -> float:
        values = self.ours_s if which == "ours" else self.raw_s
        return median(values) / self.n * 1e6

    @property
    def extra_per_node_us(self) -> float:
        """(ours median - raw median) / N: what our client adds per node."""
        return (median(self.ours_s) - median(self.raw_s)) / self.n * 1e6

    def summary(self) -> str:
        return (
            f"ours median {median(self.ours_s) * 1e3:.1f} ms "
            f"p90 {percentile(self.ours_s, 90) * 1e3:.1f} ms; raw median "
            f"{median(self.raw_s) * 1e3:.1f} ms p90 {percentile(self.raw_s, 90) * 1e3:.1f} ms; "
            f"ratio {self.ratio:.2f}x ({self.rounds} rounds)"
        )


@dataclass
class FanoutResult:
    """Every round at one fleet size: the start (headline) and the status rounds."""

    n: int
    hosts: int
    start: Series
    status: Series

    @classmethod
    def empty(cls, n: int, hosts: int) -> FanoutResult:
        return cls(n, hosts, Series(n), Series(n))


async def _cancel_all(client: AgentClient, nodes: list[NodeAddress], session: str) -> None:
    calls = await stop_all_nodes(client, nodes, session, 60)
    bad = [c for c in calls if not c.ok or c.value is None or c.value.state != "cancelled"]
    if bad:
        c = bad[0]
        state = c.value.state if c.value else None
        raise BenchError(
            f"cancel of {session} failed on {len(bad)} nodes, e.g. {c.node_id}: "
            f"{c.status_code} {c.error} state={state}"
        )


async def _round_ours(client: AgentClient, nodes: list[NodeAddress], session: str) -> float:
    start_at = time.time_ns() + SCHEDULE_AHEAD_NS
    t0 = time.perf_counter()
    calls = await start_all(client, nodes, session, start_at)
    elapsed = time.perf_counter() - t0
    bad = [c for c in calls if not c.ok]
    if bad:
        raise BenchError(f"our client: start failed on {len(bad)} nodes, e.g. {bad[0].error}")
    return elapsed


async def _round_raw(conns: list[RawConnection], nodes: list[NodeAddress], session: str) -> float:
    start_at = time.time_ns() + SCHEDULE_AHEAD_NS
    t0 = time.perf_counter()
    answers = await asyncio.gather(
        *(
            conn.request(
                "POST",
                START_PATH,
                {
                    "session_id": session,
                    "command_id": command_id(session, "start", node.node_id),
                    "start_at_ns": start_at,
                },
            )
            for conn, node in zip(conns, nodes, strict=True)
        )
    )
    elapsed = time.perf_counter() - t0
    bad = [(status, body) for status, body in answers if status != 200]
    if bad:
        raise BenchError(f"raw client: start failed on {len(bad)} nodes, e.g. {bad[0]!r:.200}")
    return elapsed


async def _status_ours(client: AgentClient, nodes: list[NodeAddress]) -> float:
    t0 = time.perf_counter()
    calls = await client.fan_out(nodes, client.status)
    elapsed = time.perf_counter() - t0
    bad = [c for c in calls if not c.ok]
    if bad:
        raise BenchError(f"our client: status failed on {len(bad)} nodes, e.g. {bad[0].error}")
    return elapsed


async def _status_raw(conns: list[RawConnection]) -> float:
    t0 = time.perf_counter()
    answers = await asyncio.gather(*(conn.request("GET", STATUS_PATH) for conn in conns))
    elapsed = time.perf_counter() - t0
    bad = [(status, body) for status, body in answers if status != 200]
    if bad:
        raise BenchError(f"raw client: status failed on {len(bad)} nodes, e.g. {bad[0]!r:.200}")
    return elapsed


async def _measure(nodes: list[NodeAddress], rounds: int, out: FanoutResult) -> None:
    client = AgentClient(timeout_s=60)
    conns = [RawConnection(n.host, n.port, n.api_token) for n in nodes]
    try:
        async with asyncio.timeout(120):
            # Warm both: one connection per node each, opened by a status call.
            warm = await client.fan_out(nodes, client.status)
            if not all(c.ok for c in warm):
                raise BenchError(f"status failed: {[c.error for c in warm if not c.ok][:3]}")
            statuses = await asyncio.gather(*(c.request("GET", STATUS_PATH) for c in conns))
            if any(status != 200 for status, _ in statuses):
                raise BenchError("raw client: status failed on some nodes")
            # One unmeasured round per client: the first start after launch loads the
            # encoder libraries in every host, which is not the client's cost.
            for which in ("ours", "raw"):
                session = session_id(f"fo{len(nodes)}-warm-{which}")
                if which == "ours":
                    await _round_ours(client, nodes, session)
                else:
                    await _round_raw(conns, nodes, session)
                await _cancel_all(client, nodes, session)
        for r in range(rounds):
            order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
            for which in order:
                session = session_id(f"fo{len(nodes)}-r{r}-{which}")
                async with asyncio.timeout(120):
                    if which == "ours":
                        out.start.ours_s.append(await _round_ours(client, nodes, session))
                    else:
                        out.start.raw_s.append(await _round_raw(conns, nodes, session))
                    await _cancel_all(client, nodes, session)
        # The cheap call, after every start was cancelled: the same connections, the
        # same alternation; one unmeasured round each first (first parse, GC state).
        async with asyncio.timeout(120):
            await _status_ours(client, nodes)
            await _status_raw(conns)
        for r in range(rounds):
            order = ("ours", "raw") if r % 2 == 0 else ("raw", "ours")
            for which in order:
                async with asyncio.timeout(120):
                    if which == "ours":
                        out.status.ours_s.append(await _status_ours(client, nodes))
                    else:
                        out.status.raw_s.append(await _status_raw(conns))
    finally:
        await client.aclose()
        for conn in conns:
            await conn.aclose()


def run_fanout(root: Path, children: Children, sizes: list[int], rounds: int) -> list[FanoutResult]:
    """For each size, serve that many agent apps from HOSTS processes and time the fan-out."""
    out: list[FanoutResult] = []
    token = secrets.token_urlsafe(24)
    for n in sizes:
        hosts = min(HOSTS, n)
        counts = [n // hosts + (1 if i < n % hosts else 0) for i in range(hosts)]
        spawned = []
        logs = []
        ports: list[int] = []
        try:
            for h, count in enumerate(counts):
                base = free_port_range(count, avoid=set(ports))
                data_dir = root / f"fanout-{n}" / f"host-{h}"
                log = root / f"fanout-{n}" / f"host-{h}.log"
                argv = ["-m", "bench.agent_host", "--count", str(count)]
                argv += ["--base-port", str(base), "--data-dir", str(data_dir), f"--token={token}"]
                child = spawn_process(f"host-{n}-{h}", argv, {}, log, base)
                spawned.append(children.add(child))
                logs.append(log)
                ports.extend(range(base, base + count))
            asyncio.run(wait_listening(ports, spawned, logs, timeout_s=60 + n / 2))
            nodes = [NodeAddress(f"host-agent-{p}", LOOPBACK, p, token) for p in ports]
            result = FanoutResult.empty(n, hosts)
            try:
                asyncio.run(_measure(nodes, rounds, result))
            except (BenchError, TimeoutError) as err:
                raise BenchError(
                    f"fan-out to {n} failed: {err!r}\nhost log:\n{log_tail(logs[0])}"
                ) from err
            out.append(result)
            print(
                f"  fan-out N={n:<3} ({hosts} hosts) start:  {result.start.summary()}", flush=True
            )
            print(
                f"  fan-out N={n:<3} ({hosts} hosts) status: {result.status.summary()}", flush=True
            )
        finally:
            children.stop(spawned)
    return out
