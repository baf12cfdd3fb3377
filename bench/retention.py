"""Benchmark 8: the retention planner over 100,000 files (target under 100 ms).

``plan_deletions`` (node_agent/storage/retention.py) runs on the housekeeping tick, before
a start on a short disk and when a recording reaches its reserve, over a description of
every recording on the disk. This times it in-process on synthetic descriptions: half
offloaded, sizes 50 MB to 4 GB, random ages, no two alike. Three cases: a disk under its
retention target (the planner deletes the oldest offloaded files until the target is
reached), the operator's "delete every offloaded recording", and a disk with room (the
common case: nothing to do).

``python -m bench.retention [--quick]`` runs this section alone and prints it.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from dataclasses import dataclass, field

from bench.common import median, ms, percentile, yes_no
from bench.plan import RETENTION_TARGET_MS
from node_agent.storage.retention import RecordingFile, plan_deletions

RETENTION_PERCENT = 15.0
FREE_PERCENT = 5.0  # the disk the planner sees in the "under the target" case


@dataclass
class RetentionCase:
    """One way of calling the planner, timed ``runs`` times."""

    name: str
    planned: int  # recordings in the plan
    times_s: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return median(self.times_s) * 1e3

    @property
    def p95_ms(self) -> float:
        return percentile(self.times_s, 95) * 1e3


@dataclass
class RetentionResult:
    """The planner's timings over ``files`` descriptions."""

    files: int
    offloaded: int
    runs: int
    cases: list[RetentionCase]

    @property
    def worst_p95_ms(self) -> float:
        return max(c.p95_ms for c in self.cases)


def synthetic_files(n: int, seed: int = 8) -> list[RecordingFile]:
    """``n`` recordings: half offloaded, one active, sizes 50 MB - 4 GB, distinct ages."""
    rng = random.Random(seed)
    ages = rng.sample(range(10**9), n)
    files = []
    for i in range(n):
        session = f"B{i:06d}"
        files.append(
            RecordingFile(
                name=f"{session}_CAM_C_20260101_000000.mp4",
                size_bytes=rng.randint(50_000_000, 4_000_000_000),
                started_ns=1_700_000_000_000_000_000 + ages[i] * 1_000_000_000,
                offloaded=i % 2 == 0,
                active=i == n - 1,
                manifest=f"{session}_CAM_C.json",
                companions=(f"{session}_CAM_C_lockview.jpg",),
                companion_bytes=rng.randint(2_000, 400_000),
            )
        )
    return files


def run_retention(n_files: int, runs: int) -> RetentionResult:
    """Time ``plan_deletions`` ``runs`` times per case over ``n_files`` descriptions."""
    files = synthetic_files(n_files)
    used = sum(f.total_bytes for f in files)
    total = round(used / (1 - FREE_PERCENT / 100))
    cases = [
        ("under the target: oldest offloaded until 15 % free", total - used, False),
        ("delete every offloaded recording", total - used, True),
        ("room enough: nothing to delete", total, False),
    ]
    out = []
    for name, free, everything in cases:
        case = RetentionCase(name, 0)
        plan_deletions(files, free, total, RETENTION_PERCENT, everything)  # warm-up
        for _ in range(runs):
            gc.collect()
            t0 = time.perf_counter()
            plan = plan_deletions(files, free, total, RETENTION_PERCENT, everything)
            case.times_s.append(time.perf_counter() - t0)
        case.planned = len(plan)
        if any(not f.deletable for f in plan):
            raise AssertionError("the planner chose a recording that is not deletable")
        out.append(case)
        print(
            f"  {name}: {len(plan)} of {n_files} planned, median {case.median_ms:.1f} ms, "
            f"p95 {case.p95_ms:.1f} ms",
            flush=True,
        )
    return RetentionResult(n_files, sum(f.offloaded for f in files), runs, out)


def retention_section(result: RetentionResult | None) -> list[str]:
    """The report's section for this benchmark."""
    lines = ["## 8. The retention planner over 100,000 files", ""]
    if result is None:
        return [*lines, "Not measured in this run.", ""]
    lines += [
        f"How measured: `plan_deletions` (node_agent/storage/retention.py) in the bench "
        f"process over {result.files:,} synthetic recording descriptions ({result.offloaded:,} "
        "offloaded, one being recorded, sizes 50 MB to 4 GB, distinct random ages, a Lock View "
        f"still each), {result.runs} timed runs per case after one warm-up, `gc.collect()` "
        f"before each. Retention aims at {RETENTION_PERCENT:g} % free; in the first two cases "
        f"the disk has {FREE_PERCENT:g} % free. The planner filters the deletable recordings "
        "(offloaded, with a manifest, not being recorded), sorts them oldest first and cuts "
        "the list where the target is reached; building the description (the housekeeper's "
        "cached scan) is not part of the figure. Percentiles are nearest-rank.",
        "",
        f"| case | planned | median | p95 | target < {RETENTION_TARGET_MS:g} ms | met? |",
        "|---|---|---|---|---|---|",
    ]
    for c in result.cases:
        lines.append(
            f"| {c.name} | {c.planned:,} | {ms(c.median_ms / 1e3)} | {ms(c.p95_ms / 1e3)} "
            f"| < {RETENTION_TARGET_MS:g} ms | {yes_no(c.p95_ms < RETENTION_TARGET_MS)} |"
        )
    lines.append("")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retention", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 files, 5 runs")
    args = parser.parse_args(argv)
    result = run_retention(1_000, 5) if args.quick else run_retention(100_000, 15)
    print("\n".join(retention_section(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
