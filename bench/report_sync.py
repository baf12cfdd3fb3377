"""Benchmark 11's summary rows and section of docs/benchmarks.md, and a runner for it alone:
``python -m bench.report_sync [--quick] [--out PATH]``."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.alone import run_alone
from bench.common import median, percentile, yes_no
from bench.plan import SYNC_TARGET_MS, Plan
from bench.summary import SummaryRow, summary_table
from bench.sync import MAXPOLL, MINPOLL, RUN_S, run_sync
from bench.sync_result import MODES, SyncResult

HEADING = "## 11. One clock for the fleet: starts over a jittery network"
ROW_PREFIX = "one clock:"


# A true first frame this far past the instant is reported (one frame at 200 fps).
LATE_FRAME_MS = 5.0


def _f(value_ms: float) -> str:
    return f"{value_ms:.3f} ms"


def sync_summary_rows(result: SyncResult | None, why: str | None = None) -> list[SummaryRow]:
    what = f"{ROW_PREFIX} scheduled start spread p99, offset-corrected"
    target = f"≤ {SYNC_TARGET_MS:g} ms"
    if result is None or not result.of("scheduled"):
        value = f"not measured in this run{f' ({why})' if why else ''}"
        return [SummaryRow(what, value, target, None)]
    p99 = result.spread_ms("scheduled", "fleet", 99)
    true99 = result.spread_ms("scheduled", "true", 99)
    covered, judged = result.coverage("bound")
    rcov, rjudged = result.coverage("residual")
    late = sum(t.late for t in result.of("scheduled"))
    return [
        SummaryRow(
            f"{what} at N = {result.n} ({result.delay_ms:g} ± {result.jitter_ms:g} ms jitter, "
            "shifted clocks)",
            f"{_f(p99)} (true {_f(true99)}; median {_f(result.spread_ms('scheduled', 'fleet', 50))}"
            f", uncorrected median {_f(result.spread_ms('scheduled', 'raw', 50))}; start-now "
            f"{_f(result.spread_ms('now', 'fleet', 99))}; {late} late nodes)",
            f"{target}, no late node",
            p99 <= SYNC_TARGET_MS and true99 <= SYNC_TARGET_MS and late == 0,
        ),
        SummaryRow(
            f"{ROW_PREFIX} the reported error bound covers the clock's true error",
            f"{covered} of {judged} (offset's own error within dispersion + delay / 2: "
            f"{rcov} of {rjudged})",
            "all",
            judged > 0 and covered == judged and rcov == rjudged,
        ),
    ]


def _spread_table(result: SyncResult) -> list[str]:
    lines = [
        "| mode | trials | uncorrected p50 / p99 / max | offset-corrected p50 / p99 / max "
        "| true p50 / p99 / max | arm time median (max) | lead median (max) | late nodes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        trials = result.of(mode)
        cells = [
            " / ".join(f"{result.spread_ms(mode, kind, p):.3f}" for p in (50, 99, 100)) + " ms"
            for kind in ("raw", "fleet", "true")
        ]
        arms = [t.arm_s * 1e3 for t in trials]
        arm = f"{median(arms):.0f} ms ({max(arms, default=float('nan')):.0f} ms)"
        if mode == "scheduled":
            leads = [t.lead_ns / 1e6 for t in trials]
            lead = f"{median(leads):.0f} ms ({max(leads, default=float('nan')):.0f} ms)"
            late = str(sum(t.late for t in trials))
        else:
            lead, late = "-", "-"
        lines.append(f"| {mode} | {len(trials)} | {' | '.join(cells)} | {arm} | {lead} | {late} |")
    return [*lines, ""]


def _node_table(result: SyncResult) -> list[str]:
    lines = [
        "| node | shift (truth) | Python saw | chrony, clean path | offset reported, median "
        "| its true error, median (worst) | bound median | dispersion + delay / 2, median "
        "| clock-gate warnings |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, shift in enumerate(result.shifts_ns):
        rows = [t.nodes[i] for t in result.trials if i < len(t.nodes)]
        offsets = [r.offset_ns / 1e6 for r in rows if r.offset_ns is not None]
        errors = [e / 1e6 for r in rows if (e := r.offset_error_ns) is not None]
        bounds = [b / 1e6 for r in rows if (b := r.bound_ns) is not None]
        resid = [r.read_residual_ns / 1e6 for r in rows if r.read_residual_ns is not None]
        probe = result.probe_shifts_ns[i] / 1e6 if i < len(result.probe_shifts_ns) else None
        clean = result.clean_offsets_ns[i] / 1e6 if i < len(result.clean_offsets_ns) else None
        worst = max(errors, key=abs) if errors else float("nan")
        lines.append(
            f"| {i + 1} | {shift / 1e6:+.3f} ms | "
            + (f"{probe:+.3f} ms" if probe is not None else "-")
            + " | "
            + (f"{clean:+.3f} ms" if clean is not None else "-")
            + f" | {median(offsets):+.3f} ms | {median(errors):+.3f} ms ({worst:+.3f} ms) "
            f"| {median(bounds):.3f} ms | {median(resid):.3f} ms "
            f"| {sum(r.clock_warnings for r in rows)} |"
        )
    return [*lines, ""]


def _verdict(result: SyncResult) -> list[str]:
    corrected = result.corrected()
    p99 = result.spread_ms("scheduled", "fleet", 99)
    true99 = result.spread_ms("scheduled", "true", 99)
    resid = [n.read_residual_ns for n in result.node_trials() if n.read_residual_ns is not None]
    errs = [abs(e) for e in result.offset_errors_ms()]
    covered, judged = result.coverage("bound")
    rcov, rjudged = result.coverage("residual")
    warned = sum(1 for n in result.node_trials() if n.clock_warnings)
    manifest_bounds = sum(1 for n in result.node_trials() if n.manifest_bound_ns is not None)
    if corrected is None:
        how = "no scheduled trial to judge whether the nodes corrected start_at"
    elif corrected:
        how = (
            "the nodes moved each scheduled start by their measured offset (local first "
            "frame ≈ start_at + offset), so the uncorrected times spread with the shifts"
        )
    else:
        how = (
            "the nodes did **not** move scheduled starts by their offset (local first frame ≈ "
            "start_at on each shifted clock): the uncorrected times agree and the fleet-time "
            "spread is the spread of the shifts. The node-side correction "
            "(`sync.correct_start_by_offset`) was not in this build"
        )
    resid99 = percentile(resid, 99) / 1e6 if resid else float("nan")
    worst_resid = max(resid) / 1e6 if resid else float("nan")
    return [
        f"Scheduled starts: {how}. Offset-corrected spread p99 {_f(p99)}, true spread p99 "
        f"{_f(true99)} (target ≤ {SYNC_TARGET_MS:g} ms: "
        f"{yes_no(p99 <= SYNC_TARGET_MS and true99 <= SYNC_TARGET_MS)}).",
        "",
        f"Clocks: the reported offsets' true error (reported - shift) was at most "
        f"{max(errs, default=float('nan')):.3f} ms (p99 {percentile(errs, 99):.3f} ms). The "
        f"bound (|offset| + root dispersion + root delay / 2; from the manifest on "
        f"{manifest_bounds} of {len(result.node_trials())} node-trials, else from the bench's "
        f"own `chronyc tracking` right after the trial) covered the clock's true distance "
        f"from fleet time (|shift|) in {covered} of {judged} node-trials; the offset's own "
        f"error stayed within dispersion + delay / 2 in {rcov} of {rjudged}. Dispersion + "
        f"delay / 2 was {resid99:.3f} ms at p99 ({worst_resid:.3f} ms at most), so two "
        f"corrected nodes may be up to {2 * resid99:.3f} ms apart by their own bounds: the "
        f"corrected spread (p99 {_f(p99)}) is {'within' if p99 <= 2 * resid99 else 'beyond'} "
        "that.",
        "",
        f"Gate: every agent ran `gates.clock_policy: warn`; {warned} of "
        f"{len(result.node_trials())} starts carried a clock-gate warning (per node in the "
        "table). With `sync.correct_start_by_offset` (the default) the gate judges the "
        "offset's own error (root dispersion + root delay / 2), not the full bound, which "
        "includes |offset| and so would refuse every node shifted by more than 5 ms.",
        "",
        *_late_frames(result),
    ]


def _late_frames(result: SyncResult) -> list[str]:
    """Nodes that armed in time but whose true first frame came a while after the instant."""
    slow: list[float] = []
    judged = 0
    for trial in result.of("scheduled"):
        if trial.start_at_ns is None:
            continue
        for node in trial.nodes:
            judged += 1
            past_ms = (node.true_ns - trial.start_at_ns) / 1e6
            if past_ms > LATE_FRAME_MS:
                slow.append(past_ms)
    if not judged:
        return []
    return [
        f"First frames: in {len(slow)} of {judged} scheduled node-trials the true first frame "
        f"came more than {LATE_FRAME_MS:g} ms after `start_at_ns`"
        + (
            f" (median {sorted(slow)[len(slow) // 2]:.1f} ms, at most {max(slow):.1f} ms)"
            if slow
            else ""
        )
        + f". Those nodes had armed seconds early (no `late_ns`); in a debug run they had "
        "also fired on time under SCHED_FIFO, and the first frame came late after the "
        f"camera thread dropped back to normal priority. {result.n} agents, "
        f"{result.n + 1} chronyds and the jitter process share this machine's 2 cores. Tried "
        "and not the cause: the degraded-state tones (off: the same outliers); holding "
        "real-time priority through the first frame made it worse (every node 5 to 11 ms "
        "late). Not pinned down further; on a rig each camera has its own CPU, and the "
        "session's skew warning flags such a start.",
        "",
    ]


def sync_section(result: SyncResult | None, why: str | None = None) -> list[str]:
    """The report's section for this benchmark."""
    lines = [HEADING, ""]
    if result is None:
        return [*lines, f"Not measured in this run{f': {why}' if why else ''}.", ""]
    lines += [
        f"How measured (bench/sync.py, docs/bench-sync.md): {result.n} network namespaces, "
        "each joined to the root namespace by a veth pair with its own /30. In each, a real "
        "agent (`python -m app.cli agent`, synthetic camera 160x120 @ 30 fps, "
        "`sync.role: client`) and its own `chronyd -x` client (not touching the real clock, "
        f"polling every 2^{MINPOLL} to 2^{MAXPOLL} s), both on a clock libfaketime shifts by "
        "the node's own known amount (4 to 40 ms, alternating sign). The master chronyd "
        "(`local stratum 8`, unshifted: fleet time is this machine's clock) and the "
        "coordinator's client (`AgentClient.fan_out`, as the coordinator sends starts) run "
        "in the root namespace. Between them one jitter process: a TCP proxy per agent and a "
        "UDP relay per chronyd, each chunk or datagram held "
        f"max(0, {result.delay_ms:g} + U(-{result.jitter_ms:g}, +{result.jitter_ms:g})) ms, "
        "each direction drawn on its own (seeded). Before the trials the bench checks that "
        "the shifts took: a Python probe in each namespace compares `time.time_ns()` with the "
        "raw `clock_gettime` system call, and each chronyd, over the path without jitter, "
        "must report its shift within 1 ms. Then the jitter goes on, every chronyd is "
        f"restarted (no clean sample left), synchronises again and gathers samples for "
        f"{result.settle_s:g} s. One unmeasured warm-up start, then {len(result.of('now'))} "
        "trials per mode, alternating: *now* sends starts without `start_at_ns` (each node "
        "starts on receipt); *scheduled* sends `start_at_ns` = now + "
        f"max({result.lead_ms} ms, 2 x the slowest arm time of the last 5 trials, at most 10 s) "
        "in fleet time (the lead adapts to the arm times, as the coordinator's does to round "
        "trips); a node whose true first frame is over 150 ms past `start_at_ns`, or that "
        f"reports `late_ns`, counts as late. Each records {RUN_S:g} s past its start, then "
        "stops. From each manifest: *uncorrected* = `first_frame_ns` (the node's clock), "
        "*offset-corrected* = `first_frame_ns - clock_offset_ns` (what the coordinator "
        "stores as the session's skew), *true* = `first_frame_ns - shift` (the master's "
        "clock: what really happened). Spread = max - min over the nodes; nearest-rank "
        "percentiles over trials.",
        "",
        *_spread_table(result),
        *_node_table(result),
        *_verdict(result),
    ]
    retried = [x for t in result.trials for x in t.retried]
    lines += [
        f"Commands sent twice: {len(retried)} (a command whose connection is lost before "
        "the answer is resent once with the same command id, which the agent treats as the "
        "same command. With uvicorn's 5 s keep-alive an agent closed idle connections the "
        "client was about to reuse over the delaying link; agents now keep them 75 s, longer "
        "than the coordinator's client keeps them, so this should stay 0.)",
        "",
    ]
    if result.leftover_namespaces or result.problems:
        lines += [
            "Problems: "
            + "; ".join(
                [*result.problems, *(f"namespace {x} left" for x in result.leftover_namespaces)]
            ),
            "",
        ]
    return lines


def measure(plan: Plan, root: Path) -> SyncResult:
    return run_sync(root, plan.sync_nodes, plan.sync_trials, plan.sync_lead_ms, plan.sync_settle_s)


def main(argv: list[str] | None = None) -> int:
    return run_alone(
        "sync",
        __doc__,
        measure,
        lambda r: [*summary_table(sync_summary_rows(r)), *sync_section(r)],
        lambda r: r.clean,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
