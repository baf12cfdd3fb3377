"""Benchmark 3, checksum at stop: the manifest (with SHA-256) arrives with the stop answer."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from app.fleet.client import AgentClient, NodeAddress
from bench.common import (
    LOOPBACK,
    NO_CHRONYC,
    BenchError,
    Children,
    command_id,
    free_port,
    log_tail,
    session_id,
    spawn_agent,
    wait_listening,
)
from node_agent.schemas import Manifest, StartRequest, StopRequest


@dataclass
class ChecksumResult:
    """One recording: how long its stop took, and how long hashing the file again takes."""

    seconds: float
    width: int
    height: int
    stop_s: float
    sha256sum_first_s: float
    sha256sum_second_s: float
    sha256_matches: bool
    manifest: Manifest

    @property
    def ratio(self) -> float:
        return self.stop_s / self.sha256sum_second_s


def _sha256sum(path: Path) -> tuple[float, str]:
    exe = shutil.which("sha256sum")
    if exe is None:
        raise BenchError("sha256sum is not installed (coreutils)")
    t0 = time.perf_counter()
    done = subprocess.run([exe, str(path)], capture_output=True, check=True)
    elapsed = time.perf_counter() - t0
    return elapsed, done.stdout.split()[0].decode()


async def _record(client: AgentClient, node: NodeAddress, seconds: float) -> tuple[float, Manifest]:
    session = session_id(f"ck{seconds:g}s".replace(".", "p"))
    started = await client.start(
        node, StartRequest(session_id=session, command_id=command_id(session, "start", "n"))
    )
    if not started.ok:
        raise BenchError(f"start failed: {started.status_code} {started.error}")
    await asyncio.sleep(seconds)
    status = await client.status(node)  # also keeps the connection warm for the stop
    if status.value is None or status.value.recorder.state != "recording":
        raise BenchError(f"not recording after {seconds:g} s: {status.error or status.value}")
    req = StopRequest(session_id=session, command_id=command_id(session, "stop", "n"))
    t0 = time.perf_counter()
    stopped = await client.stop(node, req, timeout_s=60)
    elapsed = time.perf_counter() - t0
    if stopped.value is None or stopped.value.manifest is None:
        raise BenchError(f"stop returned no manifest: {stopped.status_code} {stopped.error}")
    return elapsed, stopped.value.manifest


def run_checksum(
    root: Path, children: Children, lengths_s: list[float], width: int, height: int, fps: float
) -> list[ChecksumResult]:
    """One agent process; record each length, stop it, then hash the file with sha256sum."""
    base = root / "checksum"
    log = base / "agent.log"
    port = free_port()
    env = {
        "CAMFLEET_NODE_ID": "checksum-1",
        "CAMFLEET_CAM_ID": "CAM_01",
        "CAMFLEET_DATA_DIR": str(base / "CAM_01"),
        "CAMFLEET_CHRONYC_PATH": NO_CHRONYC,
        "CAMFLEET_GATES__CLOCK_POLICY": "warn",  # no chronyd here: the clock gate warns
        "CAMFLEET_CLOCK_POLL_INTERVAL_S": "3600",
        "CAMFLEET_CAMERA__SOURCE": "synthetic",
        "CAMFLEET_CAMERA__WIDTH": str(width),
        "CAMFLEET_CAMERA__HEIGHT": str(height),
        "CAMFLEET_CAMERA__FPS": f"{fps:g}",
    }
    child = children.add(spawn_agent("checksum", port, env, log))
    out: list[ChecksumResult] = []
    try:
        asyncio.run(wait_listening([port], [child], [log], timeout_s=60))
        token = (base / "CAM_01" / "api_token").read_text().strip()
        node = NodeAddress("checksum-1", LOOPBACK, port, token)
        recordings = base / "CAM_01" / "recordings"

        async def measure_all() -> list[tuple[float, float, Manifest]]:
            client = AgentClient(timeout_s=30)
            try:
                measured = []
                for seconds in lengths_s:
                    stop_s, manifest = await _record(client, node, seconds)
                    measured.append((seconds, stop_s, manifest))
                return measured
            finally:
                await client.aclose()

        try:
            measured = asyncio.run(measure_all())
        except BenchError as err:
            raise BenchError(f"{err}\nagent log:\n{log_tail(log)}") from err
        for seconds, stop_s, manifest in measured:
            path = recordings / manifest.file_name
            first_s, _ = _sha256sum(path)
            second_s, digest = _sha256sum(path)
            result = ChecksumResult(
                seconds,
                width,
                height,
                stop_s,
                first_s,
                second_s,
                digest == manifest.sha256,
                manifest,
            )
            out.append(result)
            print(
                f"  checksum {seconds:g} s at {width}x{height}: stop-to-manifest "
                f"{stop_s * 1e3:.1f} ms; sha256sum {second_s * 1e3:.1f} ms (2nd run; "
                f"1st {first_s * 1e3:.1f} ms) on {manifest.size_bytes / 1e6:.1f} MB; "
                f"ratio {result.ratio:.2f}; sha256 {'matches' if result.sha256_matches else 'DIFFERS'}",
                flush=True,
            )
    finally:
        children.stop([child])
    return out
