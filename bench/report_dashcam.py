"""Benchmark 10's summary row and section of docs/benchmarks.md, and a runner for it alone:
``python -m bench.report_dashcam [--quick] [--out PATH]``."""

from __future__ import annotations

import math
import os
import sys

from bench.alone import run_alone
from bench.common import BenchError, median, ms, yes_no
from bench.dashcam import DashcamResult, run_dashcam
from bench.offload import Side
from bench.plan import DASHCAM_RATIO_TARGET
from bench.sshd import SshdError
from bench.summary import SummaryRow, summary_table

HEADING = "## 10. Dashcam ingest and rsync upload over loopback ssh"


def dashcam_summary_rows(result: DashcamResult | None) -> list[SummaryRow]:
    what = "dashcam ingest + rsync upload (SHA-256 on both ends, confirmed) / plain rsync -a"
    target = f"≥ {DASHCAM_RATIO_TARGET:g}"
    if result is None:
        return [SummaryRow(what, "not measured in this run", target, None)]
    ratio = result.ratio
    value = (
        f"{ratio:.2f} ({result.measured.mb_s():.0f} vs {result.plain.mb_s():.0f} MB/s; "
        f"{result.measured.cpu_s_per_gb():.2f} + {result.measured.cpu_s_per_gb(result.measured.server_cpu_s):.2f} "
        "CPU s/GB on the node + the NAS)"
    )
    met = None if math.isnan(ratio) else ratio >= DASHCAM_RATIO_TARGET and result.verified
    o = result.openssl_ratio
    met_o = None if math.isnan(o) else o >= DASHCAM_RATIO_TARGET and result.verified
    return [
        SummaryRow(what, value, target, met),
        SummaryRow(
            "the same with the NAS hashing by openssl (dashcam.upload.remote_hasher)",
            f"{o:.2f} ({result.openssl.mb_s():.0f} MB/s)",
            target,
            met_o,
        ),
    ]


def _row(side: Side) -> str:
    return (
        f"| {side.label} | {ms(median(side.seconds))} | {side.mb_s():.0f} MB/s | "
        f"{side.cpu_s_per_gb():.2f} | {side.cpu_s_per_gb(side.server_cpu_s):.2f} |"
    )


def _why(result: DashcamResult) -> list[str]:
    """Where the measured path's time goes, from this run's own figures."""
    mb = result.measured.round_bytes / 1e6
    plain_s = median(result.plain.seconds)
    hash_s = median(result.nas_sha256sum_s)
    ingest_s = median(result.ingest_s)
    cpu_m = (sum(result.measured.cpu_s) + sum(result.measured.server_cpu_s)) / len(
        result.measured.cpu_s
    )
    bound_s = ingest_s + max(plain_s, hash_s)
    nproc = len(os.sched_getaffinity(0))
    cpu_p = (sum(result.plain.cpu_s) + sum(result.plain.server_cpu_s)) / len(result.plain.cpu_s)
    return [
        f"Where the time goes: the ingest (copy while hashing, fsync) took {ms(ingest_s)} and the "
        f"upload {ms(median(result.upload_s))}; inside the upload the rsync calls add up to "
        f"{ms(median(result.rsync_s))} and the NAS's `sha256sum` calls to "
        f"{ms(median(result.check_s))}, overlapping (the NAS hashes one file while the next is "
        f"sent). The NAS's `sha256sum` over the same {mb:g} MB alone, in one call, took "
        f"{ms(hash_s)} ({result.measured.round_bytes / hash_s / 1e6:.0f} MB/s): "
        f"{hash_s / plain_s:.2f}x the whole plain transfer ({ms(plain_s)}). "
        f"Per round the measured path used {cpu_m:.1f} CPU seconds (node and NAS together), "
        f"the plain one {cpu_p:.1f}, on {nproc} CPUs that run both ends: the CPU alone keeps "
        f"the measured path above {ms(cpu_m / nproc)} (a ratio of at most "
        f"{plain_s / (cpu_m / nproc):.2f}). The ingest "
        "comes before the upload (the camera is copied, then handed back to recording), so even "
        "with the NAS's hash wholly hidden behind the transfer the measured path takes at least "
        f"ingest + max(plain transfer, NAS hash) = {ms(bound_s)}: a ratio of at most "
        f"{plain_s / bound_s:.2f} here. On a Pi and a NAS each hash runs on its own machine, and "
        "the link, not the CPU, usually limits an upload.",
        "",
    ]


def dashcam_section(result: DashcamResult | None) -> list[str]:
    """The report's section for this benchmark."""
    lines = [HEADING, ""]
    if result is None:
        return [*lines, "Not measured in this run.", ""]
    mb = result.files * result.file_bytes / 1e6
    lines += [
        f"One throwaway sshd on 127.0.0.1 stands in for the NAS (`bench/sshd.py`, ed25519 keys, "
        f"strict host key), its folders on this machine's disk; a folder of {result.files} files "
        f"of {result.file_bytes / 1e6:g} MB of random bytes ({mb:g} MB) stands in for the "
        f"camera (`bench/dashcam.py`). Each of {result.rounds} rounds moves the same files three "
        "ways, in alternating order, each after an `os.sync()`, each in its own worker process: "
        "*measured* runs the agent's `Ingestor` over the camera folder into a fresh staging "
        "folder (the walk, the ledger check, `copy_hashed`: SHA-256 while copying, fsync, "
        "rename; then the manifest, written atomically) and runs `Uploader.upload_pending` (per file: rsync "
        "`--archive --partial --inplace` over one shared ssh connection, then the NAS's "
        "`sha256sum` compared with the manifest, the manifest confirmed, the staged copy "
        "deleted); *openssl* is the same path with `dashcam.upload.remote_hasher: openssl`, "
        "the NAS hashing with `openssl dgst -sha256 -r`; *plain* is one `rsync -a` of the camera folder to another NAS folder with "
        "the same ssh options, no hashing, no manifests. Times are the median round. CPU "
        "seconds per GB: the node's are the worker's rusage with every program it started "
        "(the worker is a child subreaper, so the ssh connection's master that outlives its "
        "ssh call is counted too); the NAS's are the sshd's and every session it reaped "
        "(`/proc/PID/stat`).",
        "",
        "| path | median time | throughput | node CPU s/GB | NAS CPU s/GB |",
        "|---|---|---|---|---|",
        _row(result.measured),
        _row(result.openssl),
        _row(result.plain),
        "",
        f"Measured / plain: **{result.ratio:.2f}** (target ≥ {DASHCAM_RATIO_TARGET:g}: "
        f"{yes_no(result.ratio >= DASHCAM_RATIO_TARGET)}); with `remote_hasher: openssl` "
        f"**{result.openssl_ratio:.2f}** ({yes_no(result.openssl_ratio >= DASHCAM_RATIO_TARGET)})."
        " Every file confirmed by the NAS's "
        f"SHA-256, equal on both NAS folders, and staging empty after each round: "
        f"{'yes' if result.verified else 'NO'}.",
        "",
        *_why(result),
    ]
    if result.problems:
        lines += ["Problems: " + "; ".join(result.problems[:5]), ""]
    return lines


def main(argv: list[str] | None = None) -> int:
    return run_alone(
        "dashcam",
        __doc__,
        lambda plan, root: run_dashcam(
            root, plan.dashcam_files, plan.dashcam_file_mb, plan.dashcam_rounds
        ),
        lambda r: [*summary_table(dashcam_summary_rows(r)), *dashcam_section(r)],
        lambda r: r.verified,
        argv,
        (BenchError, SshdError),
    )


if __name__ == "__main__":
    sys.exit(main())
