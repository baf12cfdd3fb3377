"""``python -m bench.run [--quick] [--out PATH]``: run the benchmarks, write the report."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

from bench.checksum import ChecksumResult, run_checksum
from bench.clients import ClientsResult, Size, run_clients
from bench.common import BenchError, Children, atomic_write_text, machine
from bench.dashcam import DashcamResult, run_dashcam
from bench.fanout import FanoutResult, run_fanout
from bench.health import HealthFigure, run_health
from bench.offload import OffloadResult, run_offload
from bench.profiles import ProfileResult, run_profiles
from bench.report import Plan, render
from bench.retention import RetentionResult, run_retention
from bench.skew import SkewResult, run_skew
from bench.sshd import SshdError
from bench.sync import run_sync
from bench.sync import unavailable as sync_unavailable
from bench.sync_result import SyncResult
from bench.timelapse import TimelapseResult, run_timelapse

FULL = Plan(
    quick=False,
    skew_sizes=[3, 20],
    skew_trials=20,
    skew_leads_ms={3: 500, 20: 1500},
    fanout_sizes=[50, 100, 200],
    fanout_rounds=15,
    checksum_lengths_s=[10, 60],
    checksum_width=1280,
    checksum_height=720,
    checksum_fps=30,
    timelapse_slots=600,
    timelapse_interval_s=0.1,
    timelapse_width=1280,
    timelapse_height=720,
    # 200 real agents hold about 0.9 GB armed here; 1000 are served by stand-ins (see the
    # report). N = 200 is measured on both, to show what the stand-ins change.
    clients_sizes=[
        Size(50, standin=False),
        Size(200, standin=False, tune=True),
        Size(200, standin=True),
        Size(1000, standin=True),
    ],
    clients_status_rounds=15,
    clients_start_rounds=9,
    clients_budget_s=15.0,
    clients_real_max=200,
    # 1 GB of dashcam footage: 8 files of 128 MB (about a minute of 1080p each)
    dashcam_files=8,
    dashcam_file_mb=128.0,
    dashcam_rounds=3,
    sync_nodes=10,
    sync_trials=20,
    sync_lead_ms=1500,
    sync_settle_s=60.0,
)
QUICK = Plan(
    quick=True,
    skew_sizes=[3],
    skew_trials=2,
    skew_leads_ms={3: 500},
    fanout_sizes=[5],
    fanout_rounds=3,
    checksum_lengths_s=[1, 2],
    checksum_width=320,
    checksum_height=240,
    checksum_fps=30,
    timelapse_slots=20,
    timelapse_interval_s=0.1,
    timelapse_width=320,
    timelapse_height=240,
    clients_sizes=[Size(4, standin=False, tune=True), Size(8, standin=True)],
    clients_status_rounds=2,
    clients_start_rounds=2,
    clients_budget_s=5.0,
    clients_real_max=4,
    health_commands=10,
    health_delay_s=1.0,
    retention_files=1_000,
    retention_runs=5,
    offload_files=2,
    offload_file_mb=2.0,
    offload_rounds=1,
    dashcam_files=2,
    dashcam_file_mb=2.0,
    dashcam_rounds=1,
    sync_nodes=2,
    sync_trials=2,
    sync_lead_ms=1000,
    sync_settle_s=5.0,
)


# Measured after sections 1-11 and merged into their report (bench.only), in this order.
MERGED_SECTIONS = ("metrics", "idle")


def _on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Unwind through the finally blocks, which stop every child process.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument(
        "--out", type=Path, default=Path("docs/benchmarks.md"), help="where to write the report"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the agents' data and logs (kept on failure)"
    )
    parser.add_argument(
        "--only",
        metavar="SECTION",
        help="run one section (sync, offload, dashcam, metrics, idle) and replace only it and its summary "
        "rows in --out",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.only:
        signal.signal(signal.SIGTERM, _on_sigterm)
        from bench.only import run_only

        return run_only(args.only, plan, args.out)
    here = machine()
    if not plan.quick and 2 <= here.nproc < min(plan.skew_sizes):
        # A control row with one agent per CPU: on a small machine N = 3 already
        # oversubscribes the CPUs, and the control shows what the wait itself does.
        plan = replace(
            plan,
            skew_sizes=[here.nproc, *plan.skew_sizes],
            skew_leads_ms={here.nproc: 500, **plan.skew_leads_ms},
        )
    signal.signal(signal.SIGTERM, _on_sigterm)

    root = Path(tempfile.mkdtemp(prefix="camfleet-bench-"))
    children = Children()
    section_s: dict[str, float] = {}
    t_start = time.monotonic()
    ok = False
    try:
        print(f"camfleet bench ({'quick' if plan.quick else 'full'}); work dir {root}", flush=True)

        print("1. start skew", flush=True)
        t0 = time.monotonic()
        skew: list[SkewResult] = run_skew(
            root, children, plan.skew_sizes, plan.skew_trials, plan.skew_leads_ms
        )
        section_s["start skew"] = time.monotonic() - t0

        print("2. fan-out", flush=True)
        t0 = time.monotonic()
        fanout: list[FanoutResult] = run_fanout(
            root, children, plan.fanout_sizes, plan.fanout_rounds
        )
        section_s["fan-out"] = time.monotonic() - t0

        print("3. checksum at stop", flush=True)
        t0 = time.monotonic()
        checksum: list[ChecksumResult] = run_checksum(
            root,
            children,
            plan.checksum_lengths_s,
            plan.checksum_width,
            plan.checksum_height,
            plan.checksum_fps,
        )
        section_s["checksum"] = time.monotonic() - t0

        print("4. timelapse schedule", flush=True)
        t0 = time.monotonic()
        timelapse: list[TimelapseResult] = [
            run_timelapse(
                root,
                plan.timelapse_slots,
                plan.timelapse_interval_s,
                plan.timelapse_width,
                plan.timelapse_height,
            )
        ]
        section_s["timelapse"] = time.monotonic() - t0

        print("5. recording profiles", flush=True)
        t0 = time.monotonic()
        profiles: list[ProfileResult] = run_profiles(plan.quick)
        section_s["profiles"] = time.monotonic() - t0

        print("6. HTTP client libraries", flush=True)
        t0 = time.monotonic()
        clients: ClientsResult = run_clients(
            root,
            children,
            plan.clients_sizes,
            plan.clients_status_rounds,
            plan.clients_start_rounds,
            plan.clients_budget_s,
            plan.clients_real_max,
        )
        section_s["clients"] = time.monotonic() - t0

        print("7. the coordinator under slow node commands", flush=True)
        t0 = time.monotonic()
        health: HealthFigure = run_health(root, children, plan.health_commands, plan.health_delay_s)
        print(
            f"  /health p50 {health.p50_ms:.1f} ms p99 {health.p99_ms:.1f} ms max "
            f"{health.max_ms:.1f} ms, {health.timeouts} timeouts of {health.probes}",
            flush=True,
        )
        section_s["health"] = time.monotonic() - t0

        print("8. the retention planner", flush=True)
        t0 = time.monotonic()
        retention: RetentionResult = run_retention(plan.retention_files, plan.retention_runs)
        section_s["retention"] = time.monotonic() - t0

        print("9. offload over loopback", flush=True)
        t0 = time.monotonic()
        offload: OffloadResult = run_offload(
            root, children, plan.offload_files, plan.offload_file_mb, plan.offload_rounds
        )
        section_s["offload"] = time.monotonic() - t0

        print("10. dashcam ingest and rsync upload over loopback ssh", flush=True)
        t0 = time.monotonic()
        dashcam: DashcamResult = run_dashcam(
            root, plan.dashcam_files, plan.dashcam_file_mb, plan.dashcam_rounds
        )
        section_s["dashcam"] = time.monotonic() - t0

        print("11. one clock for the fleet: starts over a jittery network", flush=True)
        t0 = time.monotonic()
        sync_why = sync_unavailable()
        sync: SyncResult | None = None
        if sync_why is None:
            sync = run_sync(
                root, plan.sync_nodes, plan.sync_trials, plan.sync_lead_ms, plan.sync_settle_s
            )
        else:
            print(f"  not measured: {sync_why}", flush=True)
        section_s["sync"] = time.monotonic() - t0

        total_s = time.monotonic() - t_start
        text = render(
            here,
            plan,
            skew,
            fanout,
            checksum,
            timelapse,
            profiles,
            section_s,
            total_s,
            clients=clients,
            health=health,
            retention=retention,
            offload=offload,
            dashcam=dashcam,
            sync=sync,
            sync_why=sync_why,
        )
        atomic_write_text(args.out, text)
        print(f"\n{text}\nwritten to {args.out} in {total_s:.0f} s", flush=True)
        ok = True
    except (BenchError, SshdError) as err:
        print(f"camfleet bench failed: {err}", file=sys.stderr)
    finally:
        children.stop()
        if ok and not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"agent data and logs kept in {root}", file=sys.stderr)
    if not ok:
        return 1
    # The sections that also run alone (make bench ONLY=...) go into the same report, so
    # a full run leaves none of the report's sections out.
    from bench.only import run_only

    for n, name in enumerate(MERGED_SECTIONS, start=12):
        print(f"{n}. {name} (merged into the report)", flush=True)
        code = run_only(name, plan, args.out, strict=False)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
