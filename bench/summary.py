"""The summary table that opens docs/benchmarks.md: one row per headline figure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.checksum import ChecksumResult
from bench.clients import AIOHTTP, RAW, ClientsResult, SizeResult
from bench.common import ms, yes_no
from bench.fanout import FanoutResult
from bench.health import HealthFigure
from bench.plan import (
    CLIENT_RATIO_TARGET,
    FANOUT_RATIO_TARGET,
    FLAT_TOLERANCE_MS,
    GROWTH_TOLERANCE,
    HEALTH_P99_TARGET_MS,
    RETENTION_TARGET_MS,
    SKEW_TARGET_MS,
    STOP_TARGET_MS,
    TIMELAPSE_DRIFT_TARGET_MS,
    TIMELAPSE_P99_TARGET_MS,
)
from bench.profiles import ProfileResult
from bench.retention import RetentionResult
from bench.skew import SkewResult
from bench.timelapse import TimelapseResult


@dataclass(frozen=True)
class SummaryRow:
    """One headline figure: what it is, this run's value, its target, whether it was met."""

    what: str
    value: str
    target: str
    met: bool | None  # None: no target, or not measured in this run


def summary_table(rows: list[SummaryRow]) -> list[str]:
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


def headline_sizes(result: ClientsResult) -> list[SizeResult]:
    """One size result per N: the real agents' when both ran, else the stand-ins'."""
    chosen: dict[int, SizeResult] = {}
    for r in result.sizes:
        raw = r.status.get(RAW)
        if raw is None or not raw.times_s:
            continue  # the size failed before any status round: nothing to head with
        if r.n not in chosen or (chosen[r.n].standin and not r.standin):
            chosen[r.n] = r
    return [chosen[n] for n in sorted(chosen)]


def served(r: SizeResult) -> str:
    return "stand-ins" if r.standin else "real agents"


def _clients_summary(result: ClientsResult | None) -> list[SummaryRow]:
    if result is None or not result.sizes:
        return []
    rows = []
    heads = headline_sizes(result)
    for r in heads:
        ratio = r.ratio("status", AIOHTTP)
        rows.append(
            SummaryRow(
                f"status fan-out, aiohttp / raw at {r.n} nodes ({served(r)})",
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
            f"start fan-out, aiohttp / raw at {start_at.n} nodes ({served(start_at)})",
            f"{ratio:.2f}x",
            f"≤ {CLIENT_RATIO_TARGET:g}x",
            None if math.isnan(ratio) else ratio <= CLIENT_RATIO_TARGET,
        )
    )
    return rows


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
    retention: RetentionResult | None = None,
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
        *retention_summary_rows(retention),
    ]


def retention_summary_rows(result: RetentionResult | None) -> list[SummaryRow]:
    """The headline row: the slowest case's p95 against the target."""
    if result is None:
        return []
    return [
        SummaryRow(
            f"retention planner over {result.files:,} files, p95 of the slowest case",
            ms(result.worst_p95_ms / 1e3),
            f"< {RETENTION_TARGET_MS:g} ms",
            result.worst_p95_ms < RETENTION_TARGET_MS,
        )
    ]
