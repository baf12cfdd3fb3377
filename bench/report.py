"""docs/benchmarks.md: the machine, how each figure was measured, the figures beside targets."""

from __future__ import annotations

from bench.checksum import ChecksumResult
from bench.clients import ClientsResult
from bench.common import Machine, median, ms, percentile, yes_no
from bench.dashcam import DashcamResult
from bench.fanout import FanoutResult
from bench.health import HealthFigure, health_section
from bench.offload import OffloadResult
from bench.plan import (
    FANOUT_RATIO_TARGET,
    FLAT_TOLERANCE_MS,
    GROWTH_TOLERANCE,
    SKEW_TARGET_MS,
    STOP_TARGET_MS,
    TIMELAPSE_DRIFT_TARGET_MS,
    TIMELAPSE_P99_TARGET_MS,
    Plan,
)
from bench.profiles import ProfileResult
from bench.report_clients import clients_section
from bench.report_dashcam import dashcam_section, dashcam_summary_rows
from bench.report_offload import offload_section, offload_summary_rows
from bench.report_sync import sync_section, sync_summary_rows
from bench.retention import RetentionResult, retention_section
from bench.skew import RUN_AFTER_START_S, SkewResult
from bench.summary import summary_rows, summary_table
from bench.sync_result import SyncResult
from bench.timelapse import TimelapseResult

__all__ = ["Plan", "render"]


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
    retention: RetentionResult | None = None,
    offload: OffloadResult | None = None,
    dashcam: DashcamResult | None = None,
    sync: SyncResult | None = None,
    sync_why: str | None = None,
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
        *summary_table(
            summary_rows(skew, fanout, checksum, timelapse, profiles, clients, health, retention)
            + offload_summary_rows(offload)
            + dashcam_summary_rows(dashcam)
            + sync_summary_rows(sync, sync_why)
        ),
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
    lines += clients_section(plan, clients)
    lines += health_section(health)
    lines += retention_section(retention)
    lines += offload_section(offload)
    lines += dashcam_section(dashcam)
    lines += sync_section(sync, sync_why)
    return "\n".join(lines).rstrip() + "\n"
