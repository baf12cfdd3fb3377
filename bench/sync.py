"""Benchmark 11, one clock for the fleet: starts measured over a jittery network with
clocks shifted by known offsets.

N node namespaces, each with a real agent and a ``chronyd -x`` client, both on a clock
libfaketime shifts by a known amount; the coordinator's client and the master chronyd in
the root namespace; between them the jitter process (TCP to the agents, UDP to the
master). The run checks first that the shifts took (Python against the raw system call;
chronyd over a clean path), then turns the jitter on, restarts the chronyds so no clean
sample is left, lets them settle and runs the trials (bench/sync_trials.py).
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from bench import clockshift, netns
from bench.common import BenchError
from bench.sync_fleet import Fleet, fleet
from bench.sync_result import SyncResult
from bench.sync_trials import run_trials

RUN_S = 0.3  # how long each trial records after its start instant
CLEAN_TOLERANCE_NS = 1_000_000  # chronyd over the clean path: offset within 1 ms of the shift
MINPOLL, MAXPOLL = -1, 1  # 0.5 to 2 s: a settling fleet, as short a wait as makes sense


def unavailable() -> str | None:
    """Why this benchmark cannot run here (None: it can)."""
    return netns.unavailable() or clockshift.unavailable()


def _check_clean(f: Fleet, out: SyncResult, timeout_s: float = 30.0) -> None:
    """Over the clean path each chronyd's offset must come to its shift: proof that
    chronyd sees the shifted clock (and not the kernel's packet timestamps)."""
    deadline = time.monotonic() + timeout_s
    while True:
        readings = [n.reading() for n in f.nodes]
        wrong = [
            (n, r)
            for n, r in zip(f.nodes, readings, strict=True)
            if r is None or abs(r.offset_ns - n.shift_ns) > CLEAN_TOLERANCE_NS
        ]
        if not wrong:
            out.clean_offsets_ns = [r.offset_ns for r in readings if r is not None]
            return
        if time.monotonic() > deadline:
            n, r = wrong[0]
            seen = "no reading" if r is None else f"{r.offset_ns / 1e6:+.3f} ms"
            raise BenchError(
                f"{n.node_id}'s chronyd does not see its shifted clock: shift "
                f"{n.shift_ns / 1e6:+.3f} ms, chrony's offset {seen} over a clean path"
            )
        time.sleep(0.5)


def run_sync(
    root: Path,
    n: int,
    trials: int,
    lead_ms: int,
    settle_s: float,
    delay_ms: float = 5.0,
    jitter_ms: float = 20.0,
    seed: str = "camfleet-sync",
) -> SyncResult:
    """Build the fleet, check the shifts, run the trials, tear everything down."""
    why = unavailable()
    if why:
        raise BenchError(f"the sync benchmark cannot run here: {why}")
    out = SyncResult(n, delay_ms, jitter_ms, lead_ms, settle_s, [])
    with fleet(root / "sync", n, delay_ms, jitter_ms, seed, MINPOLL, MAXPOLL) as f:
        out.shifts_ns = [node.shift_ns for node in f.nodes]
        print(
            f"  sync: {n} namespaces, shifts "
            + ", ".join(f"{s / 1e6:+.3f}" for s in out.shifts_ns)
            + " ms",
            flush=True,
        )
        out.probe_shifts_ns = [
            clockshift.verify_python(node.ns.exec_argv([]), node.shift_ns, f.work)
            for node in f.nodes
        ]
        f.wait_synced(60)
        _check_clean(f, out)
        f.jitter_on()
        for node in f.nodes:
            f.start_chronyd(node)
        f.wait_synced(120)
        print(
            f"  sync: jitter on, chronyds restarted and synchronised; settling {settle_s:g} s",
            flush=True,
        )
        time.sleep(settle_s)  # chrony gathers samples through the jitter meanwhile
        asyncio.run(run_trials(f, trials, lead_ms, RUN_S, out))
    mine = f"{netns.PREFIX}{os.getpid()}n"
    out.leftover_namespaces = [x for x in netns.existing() if x.startswith(mine)]
    return out
