"""docs/benchmarks.md: the machine, how each figure was measured, the figures beside targets."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from bench.checksum import ChecksumResult
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
    Size,
    SizeResult,
)
from bench.common import Machine, median, ms, percentile, yes_no
from bench.fanout import FanoutResult
from bench.profiles import ProfileResult
from bench.skew import RUN_AFTER_START_S, SkewResult
from bench.timelapse import TimelapseResult

SKEW_TARGET_MS = 1.0
FANOUT_RATIO_TARGET = 2.0
GROWTH_TOLERANCE = 1.10  # per-node cost may rise 10 % (noise) and still count as linear
STOP_TARGET_MS = 100.0
FLAT_TOLERANCE_MS = 25.0
TIMELAPSE_P99_TARGET_MS = 10.0
TIMELAPSE_DRIFT_TARGET_MS = 1.0
CLIENT_RATIO_TARGET = 1.5  # issue 6: the chosen library within 1.5x of raw streams
HEALTH_P99_TARGET_MS = 200.0


@dataclass
class Plan:
    """The sizes this run used (full or --quick)."""

    quick: bool
    skew_sizes: list[int]
    skew_trials: int
    skew_leads_ms: dict[int, int]
    fanout_sizes: list[int]
    fanout_rounds: int
    checksum_lengths_s: list[float]
    checksum_width: int
    checksum_height: int
    checksum_fps: float
    timelapse_slots: int
    timelapse_interval_s: float
    timelapse_width: int
    timelapse_height: int
    clients_sizes: list[Size] = field(default_factory=list)
    clients_status_rounds: int = 0
    clients_start_rounds: int = 0
    clients_budget_s: float = 15.0
    clients_real_max: int = 200


@dataclass(frozen=True)
class SummaryRow:
    """One headline figure: what it is, this run's value, its target, whether it was met."""

    what: str
    value: str
    target: str
    met: bool | None  # None: no target, or not measured in this run


def _summary_table(rows: list[SummaryRow]) -> list[str]:
    lines = [
        "## Summary",
        "",
        "One row per headline figure of this run; each is explained in its section below.",
        "",
        "| what | this run | target | met? |",
        "|---|---|---|---|",
    ]
    for r in rows:
        met = "-" if r.met is None else yes_no(r.met)
        lines.append(f"| {r.what} | {r.value} | {r.target} | {met} |")
    lines.append("")
    return lines


def _skew_summary(results: list[SkewResult]) -> list[SummaryRow]:
    return [
        SummaryRow(
            f"start skew, scheduled, spread p99 at N = {r.n}",
            f"{r.spread_ms(99):.3f} ms ({r.late_arms} late arms)",
            f"≤ {SKEW_TARGET_MS:g} ms, no late arm",
            r.spread_ms(99) <= SKEW_TARGET_MS and r.late_arms == 0,
        )
        for r in results
        if r.mode == "scheduled"
    ]


def _fanout_summary(results: list[FanoutResult]) -> list[SummaryRow]:
    if not results:
        return []
    last = results[-1]
    rows = [
        SummaryRow(
            f"start fan-out, AgentClient / raw at N = {last.n}",
            f"{last.start.ratio:.2f}x",
            f"≤ {FANOUT_RATIO_TARGET:g}x",
            last.start.ratio <= FANOUT_RATIO_TARGET,
        ),
        SummaryRow(
            f"status fan-out, AgentClient / raw at N = {last.n}",
            f"{last.status.ratio:.2f}x",
            "none (diagnosis)",
            None,
        ),
    ]
    if len(results) >= 2:
        first = results[0].start
        worst = max(r.start.per_node_us("ours") / first.per_node_us("ours") for r in results[1:])
        rows.insert(
            1,
            SummaryRow(
                f"start fan-out per-node cost growth, N = {results[0].n} to {last.n}",
                f"{worst:.2f}x",
                f"≤ {GROWTH_TOLERANCE:.2f}x (linear)",
                worst <= GROWTH_TOLERANCE,
            ),
        )
    return rows


def _checksum_summary(results: list[ChecksumResult]) -> list[SummaryRow]:
    if not results:
        return []
    worst = max(r.stop_s for r in results) * 1e3
    rows = [
        SummaryRow(
            "stop-to-manifest (with SHA-256), slowest of "
            + ", ".join(f"{r.seconds:g} s" for r in results),
            f"{worst:.1f} ms",
            f"< {STOP_TARGET_MS:g} ms",
            worst < STOP_TARGET_MS,
        )
    ]
    if len(results) >= 2:
        delta = (results[-1].stop_s - results[0].stop_s) * 1e3
        rows.append(
            SummaryRow(
                "stop-to-manifest growth with length",
                f"{delta:+.1f} ms",
                f"≤ {FLAT_TOLERANCE_MS:g} ms (flat)",
                delta <= FLAT_TOLERANCE_MS,
            )
        )
    return rows


def _timelapse_summary(results: list[TimelapseResult]) -> list[SummaryRow]:
    return [
        SummaryRow(
            f"timelapse schedule error p99 and drift, {r.slots} slots",
            f"{r.error_ms(99):.3f} ms, drift {r.drift_ms:+.3f} ms, {r.missed} missed",
            f"p99 ≤ {TIMELAPSE_P99_TARGET_MS:g} ms, drift ≤ {TIMELAPSE_DRIFT_TARGET_MS:g} ms",
            r.error_ms(99) <= TIMELAPSE_P99_TARGET_MS
            and abs(r.drift_ms) <= TIMELAPSE_DRIFT_TARGET_MS
            and r.scheduled_exact
            and r.missed == 0,
        )
        for r in results
    ]


def _profiles_summary(results: list[ProfileResult]) -> list[SummaryRow]:
    if not results:
        return []
    held = [r.profile for r in results if not r.error and r.sustains]
    return [
        SummaryRow(
            "recording profiles that hold their frame rate here",
            f"{len(held)} of {len(results)}",
            "none (the recorder falls back down the list)",
            None,
        )
    ]


def _headline_sizes(result: ClientsResult) -> list[SizeResult]:
    """One size result per N: the real agents' when both ran, else the stand-ins'."""
    chosen: dict[int, SizeResult] = {}
    for r in result.sizes:
        raw = r.status.get(RAW)
        if raw is None or not raw.times_s:
            continue  # the size failed before any status round: nothing to head with
        if r.n not in chosen or (chosen[r.n].standin and not r.standin):
            chosen[r.n] = r
    return [chosen[n] for n in sorted(chosen)]


def _served(r: SizeResult) -> str:
    return "stand-ins" if r.standin else "real agents"


def _clients_summary(result: ClientsResult | None) -> list[SummaryRow]:
    if result is None or not result.sizes:
        return []
    rows = []
    heads = _headline_sizes(result)
    for r in heads:
        ratio = r.ratio("status", AIOHTTP)
        rows.append(
            SummaryRow(
                f"status fan-out, aiohttp / raw at {r.n} nodes ({_served(r)})",
                f"{ratio:.2f}x",
                f"≤ {CLIENT_RATIO_TARGET:g}x",
                None if math.isnan(ratio) else ratio <= CLIENT_RATIO_TARGET,
            )
        )
    if not heads:
        return rows
    tuned = next((r for r in heads if r.tuning), None)
    start_at = tuned or heads[-1]
    ratio = start_at.ratio("start", AIOHTTP)
    rows.append(
        SummaryRow(
            f"start fan-out, aiohttp / raw at {start_at.n} nodes ({_served(start_at)})",
            f"{ratio:.2f}x",
            f"≤ {CLIENT_RATIO_TARGET:g}x",
            None if math.isnan(ratio) else ratio <= CLIENT_RATIO_TARGET,
        )
    )
    return rows


@dataclass(frozen=True)
class HealthFigure:
    """The coordinator's /health latency under slow node commands (bench to come)."""

    concurrent_commands: int
    command_delay_s: float
    probes: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    timeouts: int  # probes that got no answer within their deadline


def health_summary_rows(figure: HealthFigure | None) -> list[SummaryRow]:
    """The hook for the '/health latency under slow commands' headline row."""
    what = "/health latency p99 under 100 concurrent slow commands"
    if figure is None:
        return [
            SummaryRow(what, "not measured in this run", f"≤ {HEALTH_P99_TARGET_MS:g} ms", None)
        ]
    value = (
        f"{figure.p99_ms:.1f} ms (p50 {figure.p50_ms:.1f}, max {figure.max_ms:.1f}; "
        f"{figure.timeouts} of {figure.probes} probes timed out)"
    )
    met = figure.p99_ms <= HEALTH_P99_TARGET_MS and figure.timeouts == 0
    return [SummaryRow(what, value, f"≤ {HEALTH_P99_TARGET_MS:g} ms", met)]


def summary_rows(
    skew: list[SkewResult],
    fanout: list[FanoutResult],
    checksum: list[ChecksumResult],
    timelapse: list[TimelapseResult],
    profiles: list[ProfileResult],
    clients: ClientsResult | None,
    health: HealthFigure | None,
) -> list[SummaryRow]:
    """Every headline row, in the order of the sections."""
    return [
        *_skew_summary(skew),
        *_fanout_summary(fanout),
        *_checksum_summary(checksum),
        *_timelapse_summary(timelapse),
        *_profiles_summary(profiles),
        *_clients_summary(clients),
        *health_summary_rows(health),
    ]


def _skew_section(plan: Plan, results: list[SkewResult], nproc: int) -> list[str]:
    leads = ", ".join(f"{ms_} ms for N = {n}" for n, ms_ in plan.skew_leads_ms.items())
    lines = [
        "## 1. Start skew",
        "",
        "How measured: N agents, each its own process (`python -m app.cli agent`, synthetic "
        "camera 160x120 @ 30 fps, no coordinator, chronyc absent), all on this machine so they "
        "share one clock. One `AgentClient.fan_out` sends a `StartRequest` to every agent: "
        "mode *now* without `start_at_ns` (each agent starts when the request arrives), mode "
        f"*scheduled* with `start_at_ns` = now + lead ({leads}). {RUN_AFTER_START_S:g} s after "
        "the start instant a `StopRequest` goes to every agent, and the spread is "
        "max - min of `manifest.first_frame_ns` over the N agents. One trial = one new session; "
        f"{plan.skew_trials} trials per row, the two modes alternating, after one unmeasured "
        "warm-up trial (the first start after launch loads the encoder in every agent; its arm "
        "time is given below the table). Percentiles are "
        "nearest-rank (with 20 trials, p99 = max). Lateness = `first_frame_ns - start_at_ns` over "
        "every agent of every trial. Arm time = from the first start sent until the last start "
        "answer came back (the lead must cover it); margin = `start_at_ns` minus that moment.",
        "",
        "| N | mode | trials | spread p50 | spread p99 | spread max | lateness p99 (max) "
        "| arm time median (max) | min margin | target | met? |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        arm = f"{ms(median(r.arm_s))} ({ms(max(r.arm_s))})"
        if r.mode == "scheduled":
            late = f"{r.lateness_p99_ms:.3f} ms ({r.lateness_max_ms:.3f} ms)"
            margin = ms(min(r.margin_ns), unit="ns")
            target = f"spread p99 ≤ {SKEW_TARGET_MS:g} ms"
            met = yes_no(r.spread_ms(99) <= SKEW_TARGET_MS and r.late_arms == 0)
        else:
            late, margin, target, met = "-", "-", "(no target; for comparison)", "-"
        lines.append(
            f"| {r.n}{' †' if r.n > nproc else ''} | {r.mode} | {r.trials} | {r.spread_ms(50):.3f} ms | {r.spread_ms(99):.3f} ms "
            f"| {r.spread_ms(100):.3f} ms | {late} | {arm} | {margin} | {target} | {met} |"
        )
    late_total = sum(r.late_arms for r in results)
    lines += [
        "",
        f"Starts that arrived after their `start_at_ns` (lead too short): {late_total}. "
        "Arm time of the first start after the agents launched (warm-up trial, mode now): "
        + ", ".join(
            f"{ms(r.first_arm_s)} for N = {r.n}" for r in results if r.first_arm_s is not None
        )
        + ".",
        "",
    ]
    if any(r.n > nproc for r in results):
        lines += [
            f"† More agents than this machine has CPUs (nproc = {nproc}). At the start instant "
            "the agents take turns on the CPUs: each waits under SCHED_FIFO for the last 50 ms "
            "(when it may; the bench runs as root, a node's unit sets LimitRTPRIO) with Python's "
            "thread switch interval shortened, and spins the last 1 ms without yielding; the "
            "real-time peers fire the moment the CPU is free, so lateness grows by a few tens "
            "of µs per agent in start order, and agents that have started encoding cannot "
            "preempt them. Without real-time priority the same run spread 7.4 ms at p99 for "
            "N = 20; spinning with sched_yield let another thread take the GIL now and then "
            "(1.8-6 ms outliers). These rows "
            "measure this machine's CPU contention as much as the agent; a fleet runs one agent "
            "per Pi. "
            + (
                f"The N = {nproc} row (one agent per CPU) is the control."
                if any(r.n <= nproc for r in results)
                else ""
            ),
            "",
        ]
    return lines


def _fanout_section(plan: Plan, results: list[FanoutResult]) -> list[str]:
    lines = [
        "## 2. Fan-out",
        "",
        "How measured: N agent apps (the real `node_agent.main.create_app`, 160x120 camera) "
        "served by `python -m bench.agent_host`, several apps per process, each app its own "
        "`uvicorn.Server` and port; the apps are spread over at most 4 host processes, and each "
        "app's encoder runs one thread (with x264's default thread pool per armed encoder, "
        "hundreds per process, the per-node cost grew 1.2x from 50 to 200 agents for both "
        "clients alike: the host, not the command path). Both "
        "clients first warm one keep-alive connection per agent (one status call each), then "
        "each runs one unmeasured start + cancel round (the first start after launch loads the "
        f"encoder in every host process). Then {plan.fanout_rounds} measured rounds, alternating which client goes first; in each, each client "
        "sends one `StartRequest` (`start_at_ns` = now + 60 s, so nothing records) to every "
        "agent and the time from the first send until every agent has answered is taken; after "
        "each start a stop to every agent cancels it (state *cancelled*), so every start uses a "
        "new session. *Ours* is `AgentClient.fan_out(nodes, lambda a: client.start(a, req))` "
        "(keep-alive pool, pydantic bodies in and out). *Raw* is a minimal client in the bench: "
        "one persistent `asyncio.open_connection` per agent, a hand-written POST with a JSON "
        "body and Content-Length, reading the status line, headers and Content-Length body "
        "(no parsing of the JSON). Per node = median / N. The time is dominated by the agents "
        "arming (opening camera and encoder) on the 4 host processes, which both clients pay "
        "alike.",
        "",
        "| N | host processes | rounds | ours median | ours p90 | raw median | raw p90 "
        f"| ours / raw | target ≤ {FANOUT_RATIO_TARGET:g}x | ours per node | raw per node |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.start
        lines.append(
            f"| {r.n} | {r.hosts} | {s.rounds} | {ms(median(s.ours_s))} "
            f"| {ms(percentile(s.ours_s, 90))} | {ms(median(s.raw_s))} "
            f"| {ms(percentile(s.raw_s, 90))} | {s.ratio:.2f}x "
            f"| {yes_no(s.ratio <= FANOUT_RATIO_TARGET)} | {s.per_node_us('ours'):.0f} µs "
            f"| {s.per_node_us('raw'):.0f} µs |"
        )
    lines.append("")
    if len(results) >= 2:
        first = results[0].start
        steps = " → ".join(f"{r.start.per_node_us('ours'):.0f} µs (N = {r.n})" for r in results)
        worst = max(r.start.per_node_us("ours") / first.per_node_us("ours") for r in results[1:])
        met = worst <= GROWTH_TOLERANCE
        raw_steps = " → ".join(f"{r.start.per_node_us('raw'):.0f} µs" for r in results)
        lines += [
            f"Per-node cost growth, ours: {steps}; largest per-node cost relative to N = "
            f"{first.n}: {worst:.2f}x. Target: no worse than linear, i.e. the per-node cost does "
            f"not grow with N (allowing {100 * (GROWTH_TOLERANCE - 1):.0f} % for noise): "
            f"{yes_no(met)}. (Raw: {raw_steps}.)",
            "",
        ]
    else:
        lines += [
            "Per-node cost growth: needs at least two sizes (this run had one): not assessed.",
            "",
        ]
    lines += _status_table(plan, results)
    return lines


def _status_table(plan: Plan, results: list[FanoutResult]) -> list[str]:
    lines = [
        "### The client's own cost: status to every agent",
        "",
        "The start rows above are dominated by the agents arming, so they hide what the client "
        "costs; the status rows below show the client's own cost, because answering a status "
        "is cheap for an agent. Same agents, same warm connections and the same method, after "
        "the start rounds (one unmeasured status round per client first): "
        f"{plan.fanout_rounds} rounds, alternating which client goes first, each timing one "
        "`GET /api/v1/status` to every agent until all have answered. *Ours* is "
        "`AgentClient.fan_out(nodes, client.status)`, which validates every answer into the "
        "pydantic `NodeStatus`; *raw* sends the same GET with the bench's raw client and reads "
        "the body without parsing it. Extra per node = (ours median - raw median) / N: what "
        "our client adds per agent. The agents still serve the requests on the same CPUs as "
        "the client, so the raw time is mostly the agents' (uvicorn, FastAPI, building the "
        "status). No target: these rows are for diagnosis.",
        "",
        "| N | rounds | ours median | ours p90 | raw median | raw p90 | ours / raw "
        "| ours per node | raw per node | extra per node |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.status
        lines.append(
            f"| {r.n} | {s.rounds} | {ms(median(s.ours_s))} | {ms(percentile(s.ours_s, 90))} "
            f"| {ms(median(s.raw_s))} | {ms(percentile(s.raw_s, 90))} | {s.ratio:.2f}x "
            f"| {s.per_node_us('ours'):.0f} µs | {s.per_node_us('raw'):.0f} µs "
            f"| {s.extra_per_node_us:+.0f} µs |"
        )
    lines.append("")
    if results:
        ratios = ", ".join(f"{r.status.ratio:.2f}x (N = {r.n})" for r in results)
        extras = ", ".join(f"{r.status.extra_per_node_us:+.0f} µs" for r in results)
        start_ratios = ", ".join(f"{r.start.ratio:.2f}x" for r in results)
        worst = max(r.status.ratio for r in results)
        if worst > FANOUT_RATIO_TARGET:
            verdict = (
                f"our client is more than {FANOUT_RATIO_TARGET:g}x slower than raw; the start "
                "rows meet their target only because the agents' arming hides it"
            )
        elif worst > 1:
            verdict = (
                f"our client is at most {100 * (worst - 1):.0f} % slower than raw, within the "
                f"{FANOUT_RATIO_TARGET:g}x the start rows are held to"
            )
        else:
            verdict = "our client is no slower than raw"
        lines += [
            f"Status, ours / raw: {ratios}; extra per node: {extras} (start, for comparison: "
            f"{start_ratios}). On this cheap call {verdict}. Even here the agents' own work is "
            "most of the raw time, so the ratio understates the client's share; the extra per "
            "node is the direct figure.",
            "",
        ]
    return lines


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


def _clients_section(plan: Plan, result: ClientsResult | None) -> list[str]:
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
                        f"| {r.n} | {_served(r)} | {call} | {name} | {_rounds_note(s)} "
                        "| n/a | n/a | n/a | n/a | n/a |"
                    )
                    continue
                extra = (
                    (median(s.times_s) - median(raw.times_s)) / r.n * 1e6
                    if raw and raw.times_s
                    else math.nan
                )
                lines.append(
                    f"| {r.n} | {_served(r)} | {call} | {name} | {_rounds_note(s)} "
                    f"| {s.median_ms():.1f} ms | {s.p90_ms():.1f} ms "
                    f"| {r.ratio(call, name):.2f}x | {median(s.times_s) / r.n * 1e6:.0f} µs "
                    f"| {extra:+.0f} µs |"
                )
    lines.append("")
    errors = [f"N = {r.n} ({_served(r)}) stopped: {r.error}" for r in result.sizes if r.error]
    errors += [
        f"{s.client} [{s.setting}] at N = {r.n} ({_served(r)}): {s.error}"
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
            f"### Tuning at N = {r.n} ({_served(r)}), status fan-out",
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
    heads = _headline_sizes(result)
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


def _checksum_section(plan: Plan, results: list[ChecksumResult]) -> list[str]:
    lines = [
        "## 3. Checksum at stop",
        "",
        f"How measured: one agent process, synthetic camera {plan.checksum_width}x"
        f"{plan.checksum_height} @ {plan.checksum_fps:g} fps, H.264 at the default bitrate. "
        "A recording is started (now), runs for the stated length, and then a `StopRequest` is "
        "sent over a warm keep-alive connection; stop-to-manifest is the time from sending the "
        "stop until its answer (which carries the manifest with the file's SHA-256) has arrived. "
        "For comparison `sha256sum <file>` is then run twice on the same file as a subprocess; "
        "the table shows the second run (warm page cache, as the file was just written), the "
        "first in brackets. The SHA-256 printed by `sha256sum` is compared with the manifest's.",
        "",
        "| recording | size | frames (dropped) | stop-to-manifest | sha256sum 2nd run (1st) "
        f"| stop / sha256sum | sha256 matches | target < {STOP_TARGET_MS:g} ms | met? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r.manifest
        lines.append(
            f"| {r.seconds:g} s | {m.size_bytes / 1e6:.1f} MB | {m.frame_count} "
            f"({m.dropped_frames}) | {ms(r.stop_s)} | {ms(r.sha256sum_second_s)} "
            f"({ms(r.sha256sum_first_s)}) | {r.ratio:.2f} | {'yes' if r.sha256_matches else 'NO'} "
            f"| < {STOP_TARGET_MS:g} ms | {yes_no(r.stop_s * 1e3 < STOP_TARGET_MS)} |"
        )
    lines.append("")
    if len(results) >= 2:
        short, long = results[0], results[-1]
        delta_ms = (long.stop_s - short.stop_s) * 1e3
        flat = delta_ms <= FLAT_TOLERANCE_MS
        under = all(r.stop_s * 1e3 < STOP_TARGET_MS for r in results)
        lines += [
            f"Flat: the {long.seconds:g} s recording's stop took {delta_ms:+.1f} ms compared with "
            f"the {short.seconds:g} s one (flat = no more than {FLAT_TOLERANCE_MS:g} ms more, "
            f"while hashing the longer file again would add about "
            f"{(long.sha256sum_second_s - short.sha256sum_second_s) * 1e3:.0f} ms): "
            f"{yes_no(flat)}. Target (flat and under {STOP_TARGET_MS:g} ms whatever the length): "
            f"{yes_no(flat and under)}.",
            "",
        ]
    return lines


def _timelapse_section(plan: Plan, results: list[TimelapseResult]) -> list[str]:
    lines = [
        "## 4. Timelapse schedule",
        "",
        "How measured: the agent's `Timelapse` (node_agent/timelapse/runner.py) run in the "
        f"bench process with the synthetic camera at {plan.timelapse_width}x"
        f"{plan.timelapse_height}, JPEG quality 85, real files on this machine's disk, for "
        f"{plan.timelapse_slots} slots {plan.timelapse_interval_s:g} s apart. Slot n is "
        "scheduled at t0 + n x interval on the monotonic clock and waited for with "
        "`threading.Event.wait`; the error of a slot is the instant the runner woke for it "
        "minus that scheduled instant (an observer receives both). Stills are named by the "
        "second (`HHMMSS.jpg`), so about one slot a second writes a still and the others find "
        "the name taken and skip; both kinds count as slots. Capture time = camera still, "
        "JPEG encode and atomic write of the slots that wrote a still. Drift = median error of "
        "the last tenth of the slots minus that of the first tenth. Percentiles are "
        "nearest-rank.",
        "",
        "| slots | interval | stills written | error p50 | error p99 | error max | drift "
        "| capture time median (max) | missed | target | met? |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = (
            r.error_ms(99) <= TIMELAPSE_P99_TARGET_MS
            and abs(r.drift_ms) <= TIMELAPSE_DRIFT_TARGET_MS
            and r.scheduled_exact
            and r.missed == 0
        )
        capture = (
            f"{median(r.capture_ms):.3f} ms ({max(r.capture_ms):.3f} ms)" if r.capture_ms else "-"
        )
        lines.append(
            f"| {r.slots} | {r.interval_s * 1000:g} ms | {r.stills} | {r.error_ms(50):.3f} ms "
            f"| {r.error_ms(99):.3f} ms | {r.error_ms(100):.3f} ms | {r.drift_ms:+.3f} ms "
            f"| {capture} | {r.missed} | p99 ≤ {TIMELAPSE_P99_TARGET_MS:g} ms, "
            f"drift ≤ {TIMELAPSE_DRIFT_TARGET_MS:g} ms | {yes_no(met)} |"
        )
    lines.append("")
    for r in results:
        lines += [
            f"Every slot scheduled at exactly t0 + n x {r.interval_s:g} s: "
            f"{'yes' if r.scheduled_exact else 'NO'}. The run took {r.wall_s:.1f} s. For "
            "comparison, a loop that slept one interval after each capture would have ended "
            f"about {r.naive_end_late_s * 1000:.1f} ms behind its schedule (the sum of the "
            "capture times and wake-up delays above), and that lag would keep growing.",
            "",
        ]
    return lines


def _profiles_section(results: list[ProfileResult]) -> list[str]:
    lines = [
        "## 5. Recording profiles",
        "",
        "How measured: for each profile, frames of the synthetic camera (rendered beforehand, "
        "so only the encoder is timed) go through the recorder's own encoder settings "
        "(ultrafast, zerolatency, bitrate clamped to the default 25 to 35 Mb/s, one keyframe a "
        "second) into a fragmented MP4 that is thrown away, as fast as the encoder takes "
        "them: 2 s of video for 4K, 5 s otherwise. CPU per frame is process CPU time (every "
        "encoder thread) divided by frames. The synthetic pattern compresses far more easily "
        "than a football pitch, so real footage costs more; on a node the self-test and the "
        "first seconds of each recording measure the real thing, and a profile that cannot "
        "hold its frame rate there is left for the next.",
        "",
        "| profile | encoder | encode fps | CPU per frame | sustains its frame rate here | "
        "rendering a synthetic frame |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        if r.error:
            lines.append(f"| {r.profile} | - | - | - | no: {r.error} | {r.render_ms:.1f} ms |")
            continue
        lines.append(
            f"| {r.profile} | {r.encoder} | {r.encode_fps:.1f} | {r.cpu_ms_per_frame:.1f} ms | "
            f"{'**yes**' if r.sustains else '**no**'} ({r.target_fps:g} needed) | "
            f"{r.render_ms:.1f} ms |"
        )
    lines.append("")
    return lines


def render(
    machine: Machine,
    plan: Plan,
    skew: list[SkewResult],
    fanout: list[FanoutResult],
    checksum: list[ChecksumResult],
    timelapse: list[TimelapseResult],
    profiles: list[ProfileResult],
    section_s: dict[str, float],
    total_s: float,
    clients: ClientsResult | None = None,
    health: HealthFigure | None = None,
) -> str:
    """The whole markdown document."""
    run = (
        "`python -m bench.run --quick` (tiny sizes: a smoke run)"
        if plan.quick
        else ("`make bench` (`python -m bench.run`)")
    )
    timings = ", ".join(f"{name} {secs:.0f} s" for name, secs in section_s.items())
    lines = [
        "# camfleet benchmarks",
        "",
        *_summary_table(summary_rows(skew, fanout, checksum, timelapse, profiles, clients, health)),
        f"Written by {run}. These are the figures of one run on the machine below, everything "
        "on 127.0.0.1; they are reported, not asserted: each stands beside its target with "
        "whether this run met it. Agents, the bench's clients and any other load share the "
        "same CPUs, so a small machine measures its own contention as well.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {machine.cpu_model} |",
        f"| nproc | {machine.nproc} |",
        f"| Python | {machine.python} |",
        f"| OS | {machine.platform} |",
        f"| date | {machine.date_utc} |",
        f"| run time | {total_s:.0f} s ({timings}) |",
        "",
    ]
    lines += _skew_section(plan, skew, machine.nproc)
    lines += _fanout_section(plan, fanout)
    lines += _checksum_section(plan, checksum)
    lines += _timelapse_section(plan, timelapse)
    lines += _profiles_section(profiles)
    lines += _clients_section(plan, clients)
    return "\n".join(lines).rstrip() + "\n"
