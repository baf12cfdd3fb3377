"""Benchmark 6, HTTP client libraries: raw streams, aiohttp and httpx fanning out to N agents.

Issue 6 asks for a well-kept client library that stays within 1.5x of raw asyncio
streams at 200 nodes on the status fan-out. Every client here sends the same requests
over warm keep-alive connections and reads every body whole without parsing it (the
JSON costs every client the same), except the coordinator's own ``AgentClient``, which
also validates the answers into its pydantic models, as the coordinator does.

Sizes up to ``real_max`` are served by real agent apps (``bench.agent_host``); larger
ones, and any size asked for as a stand-in, by ``bench.standin_host``, whose canned
answers are recorded from a real agent at the start of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from app.fleet.client import NodeAddress
from bench.client_adapters import (
    AIOHTTP,
    HTTPX_PER_NODE,
    HTTPX_SHARED,
    MAIN_CLIENTS,
    OURS,
    RAW,
    SCHEDULE_AHEAD_NS,
    START_PATH,
    STATUS_PATH,
    STOP_PATH,
    Client,
    RawClient,
    _start_body,
    main_clients,
    tuning_clients,
)
from bench.client_results import ClientsResult, Series, Size, SizeResult
from bench.common import (
    LOOPBACK,
    BenchError,
    Children,
    RawConnection,
    atomic_write_text,
    command_id,
    free_port_range,
    log_tail,
    session_id,
    spawn_process,
    wait_listening,
)

__all__ = [
    "AIOHTTP",
    "HTTPX_PER_NODE",
    "HTTPX_SHARED",
    "MAIN_CLIENTS",
    "OURS",
    "RAW",
    "ClientsResult",
    "Series",
    "Size",
    "SizeResult",
]

REAL_HOSTS = 4  # processes the real agent apps are spread over (as in bench.fanout)
STANDIN_HOSTS = 4
ROUND_TIMEOUT_S = 90.0  # one fan-out slower than this is recorded as timed out


# -- the clients ------------------------------------------------------------------------------


# -- the rounds -------------------------------------------------------------------------------


def _check(client: Client, codes: Sequence[int], what: str) -> None:
    bad = [c for c in codes if c != 200]
    if bad:
        raise BenchError(f"{client.name} ({client.setting}): {what} answered {bad[:5]}")


async def _cancel(raw: RawClient, session: str, standin: bool) -> None:
    answers = await raw.stop_all(session)
    for status, body in answers:
        if status == 404:
            continue  # this node never took the start (the client failed on it): nothing armed
        state = json.loads(body).get("state") if status == 200 else None
        # A stand-in answers its recorded stop body whatever the session; a real agent
        # must have cancelled the start it armed.
        if status != 200 or (not standin and state != "cancelled"):
            raise BenchError(f"cancel of {session} failed: {status} {body[:200]!r}")


Round = Callable[[Client], Awaitable[float]]
# What a library may raise for one node; the client's series then stops with the reason.
CLIENT_ERRORS = (OSError, aiohttp.ClientError, httpx.HTTPError, asyncio.IncompleteReadError)


async def _alternate(
    clients: Sequence[Client], series: dict[str, Series], rounds: int, budget_s: float, one: Round
) -> None:
    """``rounds`` rounds, the order rotating each round; a client stops at its time budget."""
    spent = {c.setting: 0.0 for c in clients}
    for r in range(rounds):
        k = r % len(clients)
        order = list(clients[k:]) + list(clients[:k])
        if r % 2:
            order.reverse()
        for client in order:
            s = series[client.setting]
            if s.timed_out or s.error is not None:
                continue
            if s.rounds >= 1 and spent[client.setting] > budget_s:
                s.budget_hit = True
                continue
            try:
                async with asyncio.timeout(ROUND_TIMEOUT_S):
                    elapsed = await one(client)
            except TimeoutError:
                s.timed_out = True
                continue
            except (*CLIENT_ERRORS, BenchError) as err:
                s.error = f"{type(err).__name__}: {err}"[:160]
                print(f"  clients: {client.name} [{client.setting}] failed: {s.error}", flush=True)
                continue
            s.times_s.append(elapsed)
            spent[client.setting] += elapsed


def _series_for(clients: Sequence[Client]) -> dict[str, Series]:
    return {c.setting: Series(c.name, c.setting) for c in clients}


def _by_name(series: dict[str, Series]) -> dict[str, Series]:
    return {s.client: s for s in series.values()}


async def _measure(
    nodes: list[NodeAddress],
    size: Size,
    out: SizeResult,
    status_rounds: int,
    start_rounds: int,
    budget_s: float,
    host_pids: list[int],
) -> None:
    clients = main_clients()
    raw = clients[0]
    assert isinstance(raw, RawClient)
    tuning = tuning_clients() if size.tune else []
    opened: list[Client] = []
    try:
        for c in [*clients, *tuning]:
            await c.open(nodes)
            opened.append(c)
        # Warm: one status round each opens the connections; one start + cancel each
        # loads the encoder in the real hosts and the request paths in every client.
        status = _series_for(clients)
        start = _series_for(clients)
        async with asyncio.timeout(ROUND_TIMEOUT_S * 3):
            for c in clients:
                try:
                    _check(c, await c.status_all(), "warm status")
                except CLIENT_ERRORS as err:
                    if c is raw:
                        raise
                    # A library that fails to warm is reported, not fatal to the others.
                    status[c.setting].error = start[c.setting].error = f"warm: {err!r}"[:160]
            if not size.standin:
                out.rss_idle_mb = _rss_mb(host_pids)
            for c in clients:
                if start[c.setting].error:
                    continue
                session = session_id(f"cl{size.n}-warm")
                try:
                    _check(
                        c,
                        await c.start_all(session, time.time_ns() + SCHEDULE_AHEAD_NS),
                        "warm start",
                    )
                except CLIENT_ERRORS as err:
                    if c is raw:
                        raise
                    start[c.setting].error = f"warm: {err!r}"[:160]
                if not size.standin and c is raw:
                    out.rss_armed_mb = _rss_mb(host_pids)
                await _cancel(raw, session, size.standin)

        async def status_round(c: Client) -> float:
            t0 = time.perf_counter()
            codes = await c.status_all()
            elapsed = time.perf_counter() - t0
            _check(c, codes, "status")
            return elapsed

        async def start_round(c: Client) -> float:
            session = session_id(f"cl{size.n}")
            try:
                t0 = time.perf_counter()
                codes = await c.start_all(session, time.time_ns() + SCHEDULE_AHEAD_NS)
                elapsed = time.perf_counter() - t0
            finally:
                # Cancel even after a failed round, so no agent is left armed.
                async with asyncio.timeout(ROUND_TIMEOUT_S):
                    await _cancel(raw, session, size.standin)
            _check(c, codes, "start")
            return elapsed

        await _alternate(clients, status, status_rounds, budget_s, status_round)
        out.status = _by_name(status)
        await _alternate(clients, start, start_rounds, budget_s, start_round)
        out.start = _by_name(start)
        if tuning:
            async with asyncio.timeout(ROUND_TIMEOUT_S * 2):
                for c in tuning:
                    await c.status_all()  # warm: the connections of each setting
            tuned = _series_for(tuning)
            await _alternate(tuning, tuned, status_rounds, budget_s, status_round)
            out.tuning = tuned
    finally:
        for c in opened:
            with contextlib.suppress(Exception):
                await c.aclose()


def _rss_mb(pids: Sequence[int]) -> float:
    """Sum of the resident set sizes of ``pids`` in MB (from /proc)."""
    total_kb = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
    return total_kb / 1024


# -- serving the nodes ------------------------------------------------------------------------


async def _record_bodies(node: NodeAddress) -> dict[str, Any]:
    """A real agent's status, start and cancelling-stop answers, for the stand-ins."""
    conn = RawConnection(node.host, node.port, node.api_token)
    session = session_id("record")
    try:
        async with asyncio.timeout(60):
            st, status = await conn.request("GET", STATUS_PATH)
            s1, start = await conn.request(
                "POST", START_PATH, _start_body(session, node, time.time_ns() + SCHEDULE_AHEAD_NS)
            )
            s2, stop = await conn.request(
                "POST",
                STOP_PATH,
                {"session_id": session, "command_id": command_id(session, "stop", node.node_id)},
            )
    finally:
        await conn.aclose()
    if (st, s1, s2) != (200, 200, 200):
        raise BenchError(f"recording bodies from a real agent failed: {st} {s1} {s2}")
    return {"status": json.loads(status), "start": json.loads(start), "stop": json.loads(stop)}


def _spawn_hosts(
    root: Path, children: Children, size: Size, token: str, bodies_file: Path | None
) -> tuple[list[int], list[Any], list[Path]]:
    hosts = min(STANDIN_HOSTS if size.standin else REAL_HOSTS, size.n)
    counts = [size.n // hosts + (1 if i < size.n % hosts else 0) for i in range(hosts)]
    kind = "standin" if size.standin else "real"
    ports: list[int] = []
    spawned = []
    logs = []
    for h, count in enumerate(counts):
        base = free_port_range(count, avoid=set(ports))
        folder = root / f"clients-{size.n}-{kind}"
        log = folder / f"host-{h}.log"
        if size.standin:
            assert bodies_file is not None
            argv = ["-m", "bench.standin_host", "--count", str(count), "--base-port", str(base)]
            argv += [
                f"--token={token}",
                "--bodies",
                str(bodies_file),
            ]  # = : a token may begin with -
        else:
            argv = ["-m", "bench.agent_host", "--count", str(count), "--base-port", str(base)]
            argv += ["--data-dir", str(folder / f"host-{h}"), f"--token={token}"]
        spawned.append(children.add(spawn_process(f"{kind}-{size.n}-{h}", argv, {}, log, base)))
        logs.append(log)
        ports.extend(range(base, base + count))
    return ports, spawned, logs


def _serve_and_record(root: Path, children: Children, token: str) -> Path:
    """Serve one real agent just long enough to record the stand-ins' bodies."""
    size = Size(1, standin=False)
    ports, spawned, logs = _spawn_hosts(root, children, size, token, None)
    try:
        asyncio.run(wait_listening(ports, spawned, logs, timeout_s=60))
        bodies = asyncio.run(_record_bodies(NodeAddress("record", LOOPBACK, ports[0], token)))
    finally:
        children.stop(spawned)
    return _write_bodies(root, bodies)


def _write_bodies(root: Path, bodies: dict[str, Any]) -> Path:
    path = root / "standin-bodies.json"
    atomic_write_text(path, json.dumps(bodies))
    return path


def run_clients(
    root: Path,
    children: Children,
    sizes: list[Size],
    status_rounds: int,
    start_rounds: int,
    budget_s: float,
    real_max: int,
) -> ClientsResult:
    """For each size, serve the nodes, time every client on status and start, stop the nodes."""
    token = secrets.token_urlsafe(24)
    bodies_file: Path | None = None
    results: list[SizeResult] = []
    for size in sizes:
        if size.standin and bodies_file is None:
            bodies_file = _serve_and_record(root, children, token)
        ports, spawned, logs = _spawn_hosts(root, children, size, token, bodies_file)
        try:
            asyncio.run(wait_listening(ports, spawned, logs, timeout_s=60 + size.n / 2))
            nodes = [NodeAddress(f"host-agent-{p}", LOOPBACK, p, token) for p in ports]
            if not size.standin and bodies_file is None:
                bodies_file = _write_bodies(root, asyncio.run(_record_bodies(nodes[0])))
            out = SizeResult(size.n, size.standin, len(spawned))
            try:
                asyncio.run(
                    _measure(
                        nodes,
                        size,
                        out,
                        status_rounds,
                        start_rounds,
                        budget_s,
                        [c.proc.pid for c in spawned],
                    )
                )
            except (BenchError, TimeoutError, *CLIENT_ERRORS) as err:
                # One size failing (a host died, the raw client broke) leaves the others.
                out.error = f"{err!r}"[:300]
                print(f"  clients at N={size.n} failed: {out.error}\n{log_tail(logs[0])}")
            results.append(out)
            kind = "stand-ins" if size.standin else "real agents"
            for call, table in (("status", out.status), ("start", out.start)):
                line = ", ".join(
                    f"{name} {s.median_ms():.1f} ms ({out.ratio(call, name):.2f}x, {s.rounds} r)"
                    for name, s in table.items()
                )
                print(f"  clients N={size.n} {kind} {call}: {line}", flush=True)
            for s in out.tuning.values():
                print(
                    f"  clients N={size.n} tuning {s.client} [{s.setting}]: {s.median_ms():.1f} ms "
                    f"({out.tuning_ratio(s.setting):.2f}x raw, {s.rounds} r)",
                    flush=True,
                )
        finally:
            children.stop(spawned)
    return ClientsResult(results, status_rounds, start_rounds, budget_s, real_max)


def main() -> None:
    """``python -m bench.clients``: a quick standalone run (for development)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="camfleet-clients-"))
    children = Children()
    n = int(os.environ.get("CLIENTS_N", "20"))
    try:
        run_clients(
            root,
            children,
            [Size(n, standin=False, tune=True), Size(n, standin=True)],
            status_rounds=int(os.environ.get("CLIENTS_ROUNDS", "5")),
            start_rounds=int(os.environ.get("CLIENTS_ROUNDS", "5")),
            budget_s=10,
            real_max=n,
        )
    finally:
        children.stop()


if __name__ == "__main__":
    main()
