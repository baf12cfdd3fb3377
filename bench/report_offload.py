"""Benchmark 9's summary rows and section of docs/benchmarks.md, and a runner for it alone:
``python -m bench.report_offload [--quick] [--out PATH]``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from bench.alone import run_alone
from bench.common import Children, median, ms, yes_no
from bench.offload import OffloadResult, Side, run_offload
from bench.plan import OFFLOAD_RATIO_TARGET, Plan
from bench.summary import SummaryRow, summary_table

HEADING = "## 9. Offload over loopback"
WHY_SLOWER = (
    "Why the verified copy is slower here: it does two things the plain download does"
    " not, on the same two CPUs that also serve the bytes. SHA-256 runs at about 575-"
    "635 MB/s on this machine (one core hashes 512 MB in about 0.9 s), and the fsync "
    "of 512 MB takes about 0.4 s even with writeback started every 32 MiB; the plain "
    "download (0.87 s for 512 MB) pays neither. The hashing overlaps the network in a"
    " worker thread, and since this run a node's transfer slot is released before the"
    " commit and the confirm, so those overlap the next file (the same 8 files took 2"
    ".35 s before, 2.02-2.09 s after). The figure stays beside its target as measured"
    "."
)


def offload_summary_rows(result: OffloadResult | None) -> list[SummaryRow]:
    what = "offload throughput, coordinator (hash, fsync, confirm) / plain download"
    target = f"≥ {OFFLOAD_RATIO_TARGET:g}"
    if result is None:
        return [SummaryRow(what, "not measured in this run", target, None)]
    ratio = result.ratio
    value = (
        f"{ratio:.2f} ({result.offload.mb_s():.0f} vs {result.plain.mb_s():.0f} MB/s; "
        f"{result.offload.cpu_s_per_gb():.2f} CPU s/GB in the coordinator)"
    )
    met = None if math.isnan(ratio) else ratio >= OFFLOAD_RATIO_TARGET and result.verified
    return [SummaryRow(what, value, target, met)]


def _row(side: Side, server: str) -> str:
    return (
        f"| {side.label} | {ms(median(side.seconds))} | {side.mb_s():.0f} MB/s | "
        f"{side.cpu_s_per_gb():.2f} | {server} {side.cpu_s_per_gb(side.server_cpu_s):.2f} |"
    )


def offload_section(result: OffloadResult | None) -> list[str]:
    """The report's section for this benchmark."""
    lines = [HEADING, ""]
    if result is None:
        return [*lines, "Not measured in this run.", ""]
    mb = result.files * result.file_bytes / 1e6
    lines += [
        f"One real coordinator and one real agent on this machine (`bench/offload.py`). Each of "
        f"{result.rounds} rounds writes a new session of {result.files} recordings of "
        f"{result.file_bytes / 1e6:g} MB ({mb:g} MB) into the agent's recordings folder with "
        "valid manifests, waits until the coordinator has collected them, and then moves the "
        "same files two ways, in alternating order, each after an `os.sync()` so neither "
        "pays for the other's dirty pages: the coordinator's offload (`POST /api/v1/offload` "
        "for the session, polled every 20 ms until done: stream from the agent, SHA-256 "
        "while writing, fsync of file and folder, database commit, confirm to the node) and a "
        "plain download by the bench (`GET /api/v1/recordings/{name}` from the agent with the "
        "node's token, written to disk, no hashing, no fsync). Then, from the coordinator's "
        "archive, `camfleet download SESSION DIR --from archive` (a child process: hash, "
        "fsync, rename) beside a plain GET of `/api/v1/recordings/{id}/file`. Times are the "
        "median round; CPU seconds per GB are the copier's (the coordinator's "
        "`/proc/PID/stat` utime + stime, the bench's or the CLI child's rusage) and, in the "
        "last column, those of the process serving the bytes.",
        "",
        "| copier | median time | throughput | copier CPU s/GB | server CPU s/GB |",
        "|---|---|---|---|---|",
        _row(result.offload, "agent"),
        _row(result.plain, "agent"),
        _row(result.cli, "coordinator"),
        _row(result.plain_archive, "coordinator"),
        "",
        f"Offload / plain: **{result.ratio:.2f}** (target ≥ {OFFLOAD_RATIO_TARGET:g}: "
        f"{yes_no(result.ratio >= OFFLOAD_RATIO_TARGET)}). `camfleet download` from the "
        f"archive / plain: {result.cli_ratio:.2f}. Every copy verified and every recording "
        f"confirmed to its node: {'yes' if result.verified else 'NO'}.",
        "",
        WHY_SLOWER,
        "",
    ]
    if result.problems:
        lines += ["Problems: " + "; ".join(result.problems[:5]), ""]
    return lines


def _measure(plan: Plan, root: Path) -> OffloadResult:
    children = Children()
    try:
        return run_offload(
            root, children, plan.offload_files, plan.offload_file_mb, plan.offload_rounds
        )
    finally:
        children.stop()


def main(argv: list[str] | None = None) -> int:
    return run_alone(
        "offload",
        __doc__,
        _measure,
        lambda r: [*summary_table(offload_summary_rows(r)), *offload_section(r)],
        lambda r: r.verified,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())
