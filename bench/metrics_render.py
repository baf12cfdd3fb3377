"""``make bench ONLY=metrics``: the coordinator's ``/metrics`` at 10, 100 and 1000 nodes.

Each size is rendered by the coordinator's own path (``app.metrics.render``: the
registry plus ``FleetExposition`` written from the caches) and, in the same run, by a
naive prometheus_client collector over the same cached values (a ``GaugeMetricFamily``
per series, as the coordinator did before). A loop-lag probe (a 1 ms sleep in a loop,
its overshoot recorded) runs on the event loop while the real path scrapes 1000 nodes
on a worker thread, as ``GET /metrics`` does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.context import Fleet, build_fleet
from app.db import make_engine
from app.fleet.client import NodeAddress
from app.metrics import NODE_SERIES, FleetExposition, render
from app.settings import load_coordinator_settings
from bench.plan import Plan
from bench.summary import SummaryRow
from node_agent.schemas import NodeStatus
from node_agent.settings import load_agent_settings
from node_agent.wiring import build_context

HEADING = "## 12. The coordinator's /metrics at 10, 100 and 1000 nodes"
SIZES = (10, 100, 1000)
TARGET_MS = 100.0
LAG_TARGET_MS = 10.0


class NaiveCollector(Collector):
    """The same per-node values through prometheus_client's generic families."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        state = self.fleet.state
        families = {
            n: GaugeMetricFamily(n, d, labels=["node_id", "cam_id"]) for n, d in NODE_SERIES.items()
        }
        for node_id in sorted(state.addresses):
            lv = [node_id, state.cam_ids[node_id]]
            status = state.cache[node_id].status
            assert status is not None
            d, r, c = status.disk, status.recorder, status.clock
            values = {
                "camfleet_node_up": 1.0,
                "camfleet_node_recording": 0.0,
                "camfleet_node_dropped_frames": r.dropped_frames,
                "camfleet_node_encode_fps": r.encode_fps,
                "camfleet_node_disk_free_bytes": d.free_bytes,
                "camfleet_node_disk_recording_seconds_left": d.minutes_left * 60,
                "camfleet_node_disk_unoffloaded_bytes": d.unoffloaded_bytes,
                "camfleet_node_disk_oldest_unoffloaded_age_seconds": 0.0,
                "camfleet_node_clock_offset_seconds": (c.offset_ns or 0) / 1e9,
                "camfleet_node_clock_error_bound_seconds": (c.error_bound_ns or 0) / 1e9,
                "camfleet_node_power_battery_percent": 80.0,
                "camfleet_node_thermal_cpu_temperature_celsius": 45.0,
                "camfleet_node_status_age_seconds": 0.1,
            }
            for name, value in values.items():
                families[name].add_metric(lv, float(value))
        yield from families.values()


@dataclass
class Figure:
    nodes: int
    real_ms: float
    naive_ms: float
    body_bytes: int


@dataclass
class MetricsResult:
    figures: list[Figure]
    lag_worst_ms: float
    lag_p99_ms: float
    lag_samples: int
    idle_worst_ms: float  # the same probe with nothing rendering, just before


def _fleet(root: Path, n: int, status: NodeStatus) -> Fleet:
    settings = load_coordinator_settings(
        operator_token="operator-token-0123456789",
        fleet_token="fleet-token-0123456789",
        data_dir=root / f"coordinator-{n}",
    )
    fleet = build_fleet(settings, make_engine("sqlite://"))
    full = status.model_copy(
        update={
            "cpu_temp_c": 45.0,
            "clock": status.clock.model_copy(update={"offset_ns": 1200, "error_bound_ns": 9000}),
        }
    )
    now = time.time_ns()
    for i in range(n):
        node_id = f"node-{i:04d}"
        fleet.state.set_address(NodeAddress(node_id, "127.0.0.1", 1, "t"), f"CAM_{i:04d}")
        fleet.state.cache[node_id].status = full
        fleet.state.cache[node_id].status_at_ns = now
        fleet.state.contact(node_id)
    return fleet


def _best_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return min(times)


async def _idle_lag(seconds: float) -> list[float]:
    lags: list[float] = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - t0 - 0.001) * 1000)
    return lags


async def _lag_while(fleet: Fleet, exposition: FleetExposition, scrapes: int) -> list[float]:
    lags: list[float] = []
    done = False

    async def probe() -> None:
        while not done:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - t0 - 0.001) * 1000)

    task = asyncio.create_task(probe())
    await asyncio.sleep(0.05)
    lags.clear()
    for _ in range(scrapes):
        await anyio.to_thread.run_sync(render, fleet.registry, exposition)
    done = True
    await task
    return lags


def run_metrics(root: Path, rounds: int = 5) -> MetricsResult:
    """Measure every size; the lag probe at the largest."""
    status = build_context(load_agent_settings(data_dir=root / "agent")).status()
    figures = []
    last: tuple[Fleet, FleetExposition] | None = None
    for n in SIZES:
        fleet = _fleet(root, n, status)
        exposition = FleetExposition(fleet.state)
        naive = CollectorRegistry(auto_describe=False)
        naive.register(NaiveCollector(fleet))
        body = render(fleet.registry, exposition)
        real = _best_ms(partial(render, fleet.registry, exposition), rounds)
        slow = _best_ms(partial(generate_latest, naive), rounds)
        figures.append(Figure(n, real, slow, len(body)))
        last = (fleet, exposition)
    assert last is not None
    idle = asyncio.run(_idle_lag(0.5))
    lags = sorted(asyncio.run(_lag_while(*last, scrapes=10)))
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
    return MetricsResult(figures, max(lags, default=0.0), p99, len(lags), max(idle, default=0.0))


def metrics_summary_rows(r: MetricsResult) -> list[SummaryRow]:
    big = r.figures[-1]
    return [
        SummaryRow(
            "coordinator /metrics, 1000 nodes",
            f"{big.real_ms:.1f} ms (naive prometheus_client: {big.naive_ms:.1f} ms)",
            f"< {TARGET_MS:.0f} ms",
            big.real_ms < TARGET_MS,
        ),
        SummaryRow(
            "event loop lag while /metrics renders 1000 nodes",
            f"worst {r.lag_worst_ms:.1f} ms, p99 {r.lag_p99_ms:.1f} ms "
            f"(idle loop: worst {r.idle_worst_ms:.1f} ms)",
            f"< {LAG_TARGET_MS:.0f} ms",
            r.lag_worst_ms < LAG_TARGET_MS,
        ),
    ]


def metrics_section(r: MetricsResult) -> list[str]:
    lines = [
        HEADING,
        "",
        "Cached statuses for N nodes, rendered by the coordinator's path (the registry and",
        "`FleetExposition`, written from the caches) and by a naive prometheus_client",
        "collector over the same values; best of five renders each.",
        "",
        "| nodes | camfleet render | naive prometheus_client | body |",
        "|---:|---:|---:|---:|",
    ]
    for f in r.figures:
        lines.append(
            f"| {f.nodes} | {f.real_ms:.1f} ms | {f.naive_ms:.1f} ms | {f.body_bytes / 1000:.0f} kB |"
        )
    lines += [
        "",
        f"A 1 ms sleep looping on the event loop while ten scrapes of 1000 nodes ran on a "
        f"worker thread overshot by at most {r.lag_worst_ms:.1f} ms (p99 "
        f"{r.lag_p99_ms:.1f} ms, {r.lag_samples} samples); the same probe with nothing "
        f"rendering, just before, overshot by up to {r.idle_worst_ms:.1f} ms. The render "
        "hands the GIL over every 100 nodes (before that the worst was 60-75 ms); where the "
        "rest of the wait goes on a machine this loaded is not pinned down.",
        "",
    ]
    return lines


def measure(plan: Plan, root: Path) -> tuple[list[SummaryRow], list[str], bool]:
    """The ``ONLY=metrics`` section: rows, body, and whether the render target held."""
    result = run_metrics(root, rounds=2 if plan.quick else 5)
    met = result.figures[-1].real_ms < TARGET_MS
    return metrics_summary_rows(result), metrics_section(result), met


if __name__ == "__main__":
    import tempfile

    out = run_metrics(Path(tempfile.mkdtemp(prefix="camfleet-bench-metrics-")))
    print("\n".join(metrics_section(out)))
