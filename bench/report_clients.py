"""The report's section on HTTP client libraries (benchmark 6)."""

from __future__ import annotations

import math

from bench.clients import (
    AIOHTTP,
    HTTPX_PER_NODE,
    HTTPX_SHARED,
    MAIN_CLIENTS,
    OURS,
    RAW,
    ROUND_TIMEOUT_S,
    ClientsResult,
    Series,
)
from bench.common import median
from bench.plan import CLIENT_RATIO_TARGET, Plan
from bench.summary import headline_sizes, served


def _client_settings(result: ClientsResult) -> dict[str, str]:
    out: dict[str, str] = {}
    for r in result.sizes:
        for s in r.status.values():
            out.setdefault(s.client, s.setting)
    return out


def _rounds_note(s: Series) -> str:
    if s.error is not None:
        return f"{s.rounds} (then failed: {s.error.split(':')[0]})"
    if s.timed_out:
        return f"{s.rounds} (then a round timed out)"
    if s.budget_hit:
        return f"{s.rounds} (time budget)"
    return str(s.rounds)


def clients_section(plan: Plan, result: ClientsResult | None) -> list[str]:
    if result is None:
        return []
    real = sorted({r.n for r in result.sizes if not r.standin})
    stand = sorted({r.n for r in result.sizes if r.standin})
    settings = _client_settings(result)
    lines = [
        "## 6. HTTP client libraries",
        "",
        "How measured: N nodes on 127.0.0.1; every client first opens and warms one keep-alive "
        "connection per node (one status round) and runs one unmeasured start + cancel round. "
        f"Then {result.status_rounds} status rounds (`GET /api/v1/status` to every node at once) "
        f"and {result.start_rounds} start rounds (`POST /api/v1/recording/start`, `start_at_ns` "
        "= now + 60 s, a new session each, cancelled after each round by a stop sent with the "
        "raw client, not timed). In each round every client runs once, the order rotating and "
        "reversing from round to round, so load from other work on the machine falls on every "
        "client alike. A round is the time from the first send until every node has answered. "
        "Every client reads each body whole and does not parse it, except `AgentClient` (the "
        "coordinator's client), which also validates each answer into its pydantic model. "
        f"A client whose rounds at one size add up to more than {result.budget_s:g} s runs no "
        f"more rounds there (its row says so); a round over {ROUND_TIMEOUT_S:g} s is abandoned. "
        "Ratio = client median / raw median of the same size and call; per node = median / N; "
        "extra per node = (client median - raw median) / N, what the client adds per node.",
        "",
        "Served by: "
        + (
            f"real agent apps (`bench.agent_host`, 4 processes) for N = {', '.join(map(str, real))}"
            if real
            else "no real agents"
        )
        + "; "
        + (
            "lightweight stand-in agents (`bench.standin_host`: asyncio HTTP/1.1 servers, "
            "many per process, 4 processes, checking the bearer token and answering with the "
            "status, start and stop bodies recorded from a real agent at the start of the run) "
            f"for N = {', '.join(map(str, stand))}"
            if stand
            else "no stand-ins"
        )
        + ". A stand-in answers in a few µs, so on stand-ins the raw time is mostly the "
        "client's own and the ratios are much larger than on real agents, whose FastAPI and "
        "uvicorn work is most of the raw time; the extra per node is comparable across both.",
        "",
        "| client | setting |",
        "|---|---|",
    ]
    for name in MAIN_CLIENTS:
        if name in settings:
            lines.append(f"| {name} | {settings[name]} |")
    lines += [
        "",
        "| N | served by | call | client | rounds | median | p90 | / raw | per node "
        "| extra per node |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result.sizes:
        for call, table in (("status", r.status), ("start", r.start)):
            raw = table.get(RAW)
            for name in MAIN_CLIENTS:
                s = table.get(name)
                if s is None:
                    continue
                if not s.times_s:
                    lines.append(
                        f"| {r.n} | {served(r)} | {call} | {name} | {_rounds_note(s)} "
                        "| n/a | n/a | n/a | n/a | n/a |"
                    )
                    continue
                extra = (
                    (median(s.times_s) - median(raw.times_s)) / r.n * 1e6
                    if raw and raw.times_s
                    else math.nan
                )
                lines.append(
                    f"| {r.n} | {served(r)} | {call} | {name} | {_rounds_note(s)} "
                    f"| {s.median_ms():.1f} ms | {s.p90_ms():.1f} ms "
                    f"| {r.ratio(call, name):.2f}x | {median(s.times_s) / r.n * 1e6:.0f} µs "
                    f"| {extra:+.0f} µs |"
                )
    lines.append("")
    errors = [f"N = {r.n} ({served(r)}) stopped: {r.error}" for r in result.sizes if r.error]
    errors += [
        f"{s.client} [{s.setting}] at N = {r.n} ({served(r)}): {s.error}"
        for r in result.sizes
        for table in (r.status, r.start, r.tuning)
        for s in table.values()
        if s.error
    ]
    if errors:
        lines += [
            "Clients that failed part-way (their later rounds were skipped): "
            + "; ".join(errors)
            + ".",
            "",
        ]
    tuned = [r for r in result.sizes if r.tuning]
    for r in tuned:
        lines += [
            f"### Tuning at N = {r.n} ({served(r)}), status fan-out",
            "",
            "Each setting its own client (one shared `ClientSession` or `AsyncClient`), warmed "
            "and then measured in rounds alternating as above, after the main rounds; / raw is "
            "against the raw median of the status rows above. aiohttp skips its resolver (and "
            "so any DNS cache) for a host that is an IP address "
            "(`TCPConnector._resolve_host`), which the fleet's nodes are, so the DNS settings "
            "can only show noise; *prebuilt URLs* builds each node's `yarl.URL` once "
            "(`encoded=True`) instead of parsing a string per request.",
            "",
            "| library | setting | rounds | median | p90 | / raw |",
            "|---|---|---|---|---|---|",
        ]
        for s in r.tuning.values():
            cells = (
                f"{s.median_ms():.1f} ms | {s.p90_ms():.1f} ms | {r.tuning_ratio(s.setting):.2f}x"
                if s.times_s
                else "n/a | n/a | n/a"
            )
            lines.append(f"| {s.client} | {s.setting} | {_rounds_note(s)} | {cells} |")
        aio = [s for s in r.tuning.values() if s.client == AIOHTTP and s.times_s]
        if aio:
            best = min(aio, key=lambda s: median(s.times_s))
            spread = max(s.median_ms() for s in aio) / min(s.median_ms() for s in aio)
            lines += [
                "",
                f"Fastest aiohttp setting in this run: *{best.setting}*; the aiohttp settings "
                f"lie within {100 * (spread - 1):.0f} % of each other. The main rows use "
                f"*{settings.get(AIOHTTP, '?')}*.",
            ]
        lines.append("")
    mem = [r for r in result.sizes if r.rss_armed_mb is not None and r.rss_idle_mb is not None]
    if mem:
        big, small = mem[-1], mem[0]
        if big.n > small.n:
            # Each host process has a fixed base; the difference between sizes is per agent.
            per_agent = ((big.rss_armed_mb or 0) - (small.rss_armed_mb or 0)) / (big.n - small.n)
            how = f"{per_agent:.1f} MB per extra agent armed (N = {small.n} to {big.n})"
        else:
            per_agent = (big.rss_armed_mb or 0) / big.n
            how = f"{per_agent:.1f} MB per agent armed, host processes' base included"
        at_1000 = ((big.rss_armed_mb or 0) + (1000 - big.n) * per_agent) / 1024
        lines += [
            "Memory of the real agents (sum of the host processes' RSS): "
            + "; ".join(
                f"N = {r.n}: {r.rss_idle_mb:.0f} MB idle, {r.rss_armed_mb:.0f} MB with every "
                "agent armed"
                for r in mem
            )
            + f"; {how}. Sizes above {result.real_max} use stand-ins: 1000 real agents would "
            f"hold about {at_1000:.1f} GB armed, which fits in memory, but they take about a "
            "minute to start and every start round would arm 1000 encoders on these CPUs "
            "shared with other work, so the rounds (and the bench's run time) would measure "
            "the agents far more than the clients.",
            "",
        ]
    heads = headline_sizes(result)
    if heads:
        parts = []
        for name in (AIOHTTP, HTTPX_PER_NODE, HTTPX_SHARED, OURS):
            ratios = ", ".join(f"{r.ratio('status', name):.2f}x (N = {r.n})" for r in heads)
            parts.append(f"{name} {ratios}")
        lines += [
            "Status fan-out / raw: " + "; ".join(parts) + ". Target for the library the "
            f"coordinator uses: ≤ {CLIENT_RATIO_TARGET:g}x at 200 nodes on the status fan-out.",
            "",
        ]
    return lines
