"""Benchmark 7: does the coordinator stay responsive while a slow node ties up 100 commands?

A real coordinator process, one fake node of the bench's own (``bench.fakenode``: it
joins with its own key and answers every call after the plan's ``health_delay_s``, 5 s),
a session on it, then 100 concurrent operator requests that each wait on that node (50
stops of the session, 50 previews of the node), while ``/health`` and ``GET
/api/v1/nodes`` are probed every 100 ms. The figure is the probes' latency: the
coordinator's promise is that no wait on a node holds up anything else.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.common import (
    BenchError,
    Children,
    free_port,
    log_tail,
    percentile,
    spawn_process,
    wait_listening,
)
from bench.fakenode import FakeNode

DELAY_S = 5.0
PROBE_EVERY_S = 0.1
PROBE_TIMEOUT_S = 2.0
PATHS = ("/health", "/api/v1/nodes")


@dataclass
class HealthFigure:
    """The coordinator's probe latency under slow node commands."""

    concurrent_commands: int
    command_delay_s: float
    probes: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    timeouts: int  # probes that got no answer within PROBE_TIMEOUT_S
    nodes_p99_ms: float
    storm_s: float
    answered: dict[int, int] = field(default_factory=dict)  # status code -> count


class _Prober(threading.Thread):
    """Probes each path every PROBE_EVERY_S until told to stop."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.token = token
        self.done = threading.Event()
        self.samples: dict[str, list[float]] = {p: [] for p in PATHS}
        self.timeouts = 0

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=PROBE_TIMEOUT_S) as c:
            deadline = time.monotonic() + 120  # bounded whatever happens
            while not self.done.is_set() and time.monotonic() < deadline:
                for path in PATHS:
                    t0 = time.perf_counter()
                    try:
                        c.get(path)
                    except httpx.TimeoutException:
                        self.timeouts += 1
                        continue
                    except httpx.HTTPError:
                        continue
                    self.samples[path].append(time.perf_counter() - t0)
                self.done.wait(PROBE_EVERY_S)


async def _storm(url: str, token: str, session_id: str, node_id: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count * 2, max_keepalive_connections=count * 2)
    async with httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60, limits=limits
    ) as client:
        reqs = [
            client.post(f"/api/v1/sessions/{session_id}/stop")
            if i % 2 == 0
            else client.get(f"/api/v1/nodes/{node_id}/preview.jpg")
            for i in range(count)
        ]
        answers = await asyncio.gather(*reqs, return_exceptions=True)
    return [a.status_code if isinstance(a, httpx.Response) else 0 for a in answers]


def run_health(
    root: Path, children: Children, commands: int, delay_s: float = DELAY_S
) -> HealthFigure:
    """One storm of ``commands`` requests, each held ``delay_s`` by the node, with the
    probes running; the figure."""
    port = free_port()
    operator, fleet_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    log = root / "health" / "coordinator.log"
    env = {
        "CAMFLEET_OPERATOR_TOKEN": operator,
        "CAMFLEET_FLEET_TOKEN": fleet_token,
        "CAMFLEET_HOST": "127.0.0.1",
        "CAMFLEET_PORT": str(port),
        "CAMFLEET_DATA_DIR": str(root / "health" / "coordinator"),
        "CAMFLEET_POLL_INTERVAL_S": "1",
        "CAMFLEET_COMMAND_TIMEOUT_S": "12",
        "CAMFLEET_STOP_TIMEOUT_S": "12",
    }
    argv = ["-m", "app.cli", "coordinator", "--log-level", "warning"]
    child = children.add(spawn_process("health-coordinator", argv, env, log, port))
    url = f"http://127.0.0.1:{port}"
    try:
        asyncio.run(wait_listening([port], [child], [log], timeout_s=60))
        with FakeNode(node_id="slow-1", delay_s=delay_s).running() as slow:
            joined = slow.join(url, fleet_token)
            if joined.status_code != 200:
                raise BenchError(f"the fake node could not join: {joined.text[:200]}")
            with httpx.Client(
                base_url=url, headers={"Authorization": f"Bearer {operator}"}, timeout=30
            ) as c:
                started = c.post("/api/v1/sessions", json={"lead_ms": 300})
            if started.status_code != 201:
                raise BenchError(f"session start failed: {started.text[:300]}")
            sid = started.json()["session_id"]
            prober = _Prober(url, operator)
            prober.start()
            time.sleep(0.5)
            t0 = time.perf_counter()
            codes = asyncio.run(_storm(url, operator, sid, slow.node_id, commands))
            storm_s = time.perf_counter() - t0
            prober.done.set()
            prober.join(10)
    except (BenchError, TimeoutError, httpx.HTTPError) as err:
        raise BenchError(f"health bench failed: {err!r}\n{log_tail(log)}") from err
    finally:
        children.stop([child])
    health = prober.samples["/health"]
    if not health:
        raise BenchError("no /health probe answered during the storm")
    answered: dict[int, int] = {}
    for code in codes:
        answered[code] = answered.get(code, 0) + 1
    return HealthFigure(
        concurrent_commands=commands,
        command_delay_s=delay_s,
        probes=len(health) + prober.timeouts,
        p50_ms=percentile(health, 50) * 1000,
        p99_ms=percentile(health, 99) * 1000,
        max_ms=max(health) * 1000,
        timeouts=prober.timeouts,
        nodes_p99_ms=percentile(prober.samples["/api/v1/nodes"] or [0.0], 99) * 1000,
        storm_s=storm_s,
        answered=answered,
    )


def health_section(figure: HealthFigure | None) -> list[str]:
    """The report's section for this benchmark."""
    lines = ["## 7. The coordinator under slow node commands", ""]
    if figure is None:
        return [*lines, "Not measured in this run.", ""]
    codes = ", ".join(f"{n} x {code or 'no answer'}" for code, n in sorted(figure.answered.items()))
    return [
        *lines,
        f"One real coordinator, one fake node that answers every call after "
        f"{figure.command_delay_s:g} s, a session on it; then {figure.concurrent_commands} "
        "concurrent operator requests that each wait on that node (half stops of the "
        "session, half previews of the node), while `/health` and `GET /api/v1/nodes` are "
        f"probed every {PROBE_EVERY_S * 1000:g} ms (`bench/health.py`). Before the fix "
        "this benchmark stands for, 20 such requests froze the coordinator for minutes.",
        "",
        "| probe | p50 | p99 | max | timeouts (> 2 s) |",
        "|---|---|---|---|---|",
        f"| `/health` | {figure.p50_ms:.1f} ms | {figure.p99_ms:.1f} ms | "
        f"{figure.max_ms:.1f} ms | {figure.timeouts} of {figure.probes} |",
        f"| `GET /api/v1/nodes` | | {figure.nodes_p99_ms:.1f} ms | | |",
        "",
        f"The storm took {figure.storm_s:.1f} s; its answers: {codes} (a stop of a session "
        "another stop has ended answers the session; a 502 is a preview of the slow node "
        "that did not come within its deadline, or was refused because calls were waiting).",
        "",
    ]
