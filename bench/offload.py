"""Benchmark 9, offload over loopback: the coordinator's verified, durable offload beside a
plain HTTP download of the same files from the same agent, in the same run.

One real coordinator and one real agent (synthetic camera). Each round writes a new
session of recordings straight into the agent's recordings folder (random bytes with valid
manifests: the cost of moving footage does not depend on what it shows), waits until the
coordinator has collected their manifests, then, in alternating order:

- *offload*: ``POST /api/v1/offload`` for the session, polled until done - the coordinator
  streams each file from the agent, hashes it, fsyncs it and its folder, commits it and
  confirms it to the node;
- *plain*: the bench itself GETs each file from the agent (``/api/v1/recordings/{name}``
  with the node's token) and writes it to disk: no hashing, no fsync.

Then, from the coordinator's archive, ``camfleet download SESSION DIR --from archive``
(verifies and fsyncs) beside a plain GET of ``/api/v1/recordings/{id}/file``. CPU seconds
come from ``/proc/PID/stat`` (utime + stime) of the coordinator and the agent, and from the
bench's own (or the CLI child's) rusage.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.operator.archive import JOB_RUNNING, job_id
from app.supervise import Child
from bench.common import (
    LOOPBACK,
    NO_CHRONYC,
    REPO_ROOT,
    BenchError,
    Children,
    free_port,
    log_tail,
    median,
    spawn_agent,
    spawn_process,
)
from node_agent.naming import manifest_name, recording_name
from node_agent.recorder.manifest import write_manifest
from node_agent.schemas import Codec, Manifest, Position

NODE_ID = "offload-1"
CAM_ID = "CAM_OFF"
POLL_S = 0.02
BLOCK = 8 << 20


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, in seconds (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    """One way of moving the files, over every round."""

    label: str
    seconds: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)  # the copier's process
    server_cpu_s: list[float] = field(default_factory=list)  # the process serving the bytes
    round_bytes: int = 0

    def mb_s(self) -> float:
        return self.round_bytes / median(self.seconds) / 1e6 if self.seconds else float("nan")

    def cpu_s_per_gb(self, which: list[float] | None = None) -> float:
        values = self.cpu_s if which is None else which
        moved = self.round_bytes * len(values)
        return sum(values) / (moved / 1e9) if moved else float("nan")


@dataclass
class OffloadResult:
    """Both comparisons of benchmark 8."""

    files: int
    file_bytes: int
    rounds: int
    offload: Side
    plain: Side
    cli: Side
    plain_archive: Side
    verified: bool = True
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.offload.mb_s() / self.plain.mb_s()

    @property
    def cli_ratio(self) -> float:
        return self.cli.mb_s() / self.plain_archive.mb_s()


def write_session(folder: Path, session: str, files: int, file_bytes: int) -> list[Manifest]:
    """``files`` recordings of ``file_bytes`` each, with valid manifests, in ``folder``."""
    import hashlib

    block = os.urandom(BLOCK)
    manifests = []
    start_ns = time.time_ns()
    for i in range(files):
        cam = f"{CAM_ID}{i}"
        name = recording_name(session, cam, start_ns)
        h = hashlib.sha256()
        with open(folder / name, "wb") as fh:
            head = f"{session}/{cam}".encode().ljust(64, b"\0")  # every file differs
            fh.write(head)
            h.update(head)
            left = file_bytes - len(head)
            while left > 0:
                chunk = block[: min(left, BLOCK)]
                fh.write(chunk)
                h.update(chunk)
                left -= len(chunk)
        m = Manifest(
            session_id=session,
            cam_id=cam,
            node_id=NODE_ID,
            position=Position.centre,
            file_name=name,
            scheduled_start_ns=None,
            first_frame_ns=start_ns,
            last_frame_ns=start_ns + 10**9,
            clock_offset_ns=None,
            clock_synchronized=False,
            duration_s=1.0,
            frame_count=30,
            dropped_frames=0,
            width=160,
            height=120,
            fps=30.0,
            codec=Codec.h264,
            encoder="libx264",
            bitrate_bps=1_000_000,
            size_bytes=file_bytes,
            sha256=h.hexdigest(),
            software_version="bench",
        )
        write_manifest(folder, m)
        assert (folder / manifest_name(session, cam)).exists()
        manifests.append(m)
    return manifests


def _wait(what: str, check: Callable[[], bool], timeout_s: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"{what} after {timeout_s:g} s\n" + "\n".join(map(log_tail, logs)))
        time.sleep(0.1)


def _plain_get(client: httpx.Client, path: str, dest: Path) -> None:
    with client.stream("GET", path) as resp, open(dest, "wb") as fh:
        if resp.status_code != 200:
            raise BenchError(f"plain GET {path}: {resp.status_code} {resp.read()[:200]!r}")
        for block in resp.iter_raw():
            fh.write(block)


def _measure(side: Side, server_pid: int, run: Callable[[], float]) -> None:
    """One timed run; ``run`` returns the copier's CPU seconds."""
    os.sync()  # every run starts without the last one's dirty pages still being written
    server0 = proc_cpu_s(server_pid)
    t0 = time.perf_counter()
    cpu = run()
    side.seconds.append(time.perf_counter() - t0)
    side.cpu_s.append(cpu)
    side.server_cpu_s.append(proc_cpu_s(server_pid) - server0)


def run_offload(
    root: Path, children: Children, files: int, file_mb: float, rounds: int
) -> OffloadResult:
    """Start a coordinator and an agent; ``rounds`` rounds of both comparisons."""
    base = root / "offload"
    operator, fleet_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    cport, aport = free_port(), free_port()
    clog, alog = base / "coordinator.log", base / "agent.log"
    coord_env = {
        "CAMFLEET_OPERATOR_TOKEN": operator,
        "CAMFLEET_FLEET_TOKEN": fleet_token,
        "CAMFLEET_HOST": LOOPBACK,
        "CAMFLEET_PORT": str(cport),
        "CAMFLEET_DATA_DIR": str(base / "coordinator"),
        "CAMFLEET_POLL_INTERVAL_S": "0.5",
        "CAMFLEET_MANIFEST_SYNC_INTERVAL_S": "0.5",
    }
    argv = ["-m", "app.cli", "coordinator", "--log-level", "warning"]
    coordinator = children.add(spawn_process("offload-coordinator", argv, coord_env, clog, cport))
    url = f"http://{LOOPBACK}:{cport}"
    agent_dir = base / NODE_ID
    agent_env = {
        "CAMFLEET_NODE_ID": NODE_ID,
        "CAMFLEET_CAM_ID": CAM_ID,
        "CAMFLEET_DATA_DIR": str(agent_dir),
        "CAMFLEET_COORDINATOR_URL": url,
        "CAMFLEET_FLEET_TOKEN": fleet_token,
        "CAMFLEET_HEARTBEAT_INTERVAL_S": "0.5",
        "CAMFLEET_CHRONYC_PATH": NO_CHRONYC,
        "CAMFLEET_GATES__CLOCK_POLICY": "warn",  # no chronyd here: the clock gate warns
        "CAMFLEET_CLOCK_POLL_INTERVAL_S": "3600",
        "CAMFLEET_CAMERA__SOURCE": "synthetic",
        "CAMFLEET_CAMERA__WIDTH": "160",
        "CAMFLEET_CAMERA__HEIGHT": "120",
    }
    logs = [clog, alog]
    file_bytes = int(file_mb * 1e6)
    result = OffloadResult(
        files=files,
        file_bytes=file_bytes,
        rounds=rounds,
        offload=Side("offload by the coordinator (hash, fsync, confirm)"),
        plain=Side("plain download from the agent (no hash, no fsync)"),
        cli=Side("camfleet download --from archive (hash, fsync)"),
        plain_archive=Side("plain download from the archive"),
    )
    for side in (result.offload, result.plain, result.cli, result.plain_archive):
        side.round_bytes = files * file_bytes
    op_headers = {"Authorization": f"Bearer {operator}"}
    try:
        _wait("the coordinator is not up", lambda: _up(url), 60, logs)
        agent = children.add(spawn_agent("offload-agent", aport, agent_env, alog))
        with httpx.Client(base_url=url, headers=op_headers, timeout=60) as op:
            _wait("the agent has not joined", lambda: _online(op), 60, logs)
            token = (agent_dir / "api_token").read_text().strip()
            agent_http = httpx.Client(
                base_url=f"http://{LOOPBACK}:{aport}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=60,
            )
            with agent_http:
                for r in range(rounds):
                    _round(result, r, base, op, agent_http, url, operator, coordinator, agent, logs)
    except (OSError, httpx.HTTPError) as err:
        raise BenchError(f"offload bench failed: {err!r}\n" + log_tail(clog)) from err
    finally:
        children.stop([c for c in children.items if c.name.startswith("offload-")])
    return result


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _online(op: httpx.Client) -> bool:
    return int(op.get("/api/v1/nodes").json().get("online", 0)) >= 1


def _round(
    result: OffloadResult,
    r: int,
    base: Path,
    op: httpx.Client,
    agent_http: httpx.Client,
    url: str,
    operator: str,
    coordinator: Child,
    agent: Child,
    logs: list[Path],
) -> None:
    session = f"OFFB{r}{secrets.token_hex(2).upper()}"
    recordings = base / NODE_ID / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    manifests = write_session(recordings, session, result.files, result.file_bytes)

    def listed() -> list[dict[str, object]]:
        return list(
            op.get("/api/v1/recordings", params={"session_id": session}).json()["recordings"]
        )

    _wait(
        "the coordinator has not collected the manifests",
        lambda: len(listed()) == result.files,
        60,
        logs,
    )
    coord_pid, agent_pid = coordinator.proc.pid, agent.proc.pid
    plain_dir = base / "plain" / session
    plain_dir.mkdir(parents=True)

    def offload() -> float:
        cpu0 = proc_cpu_s(coord_pid)
        resp = op.post("/api/v1/offload", json={"session_id": session})
        if resp.status_code >= 300:
            raise BenchError(f"POST /api/v1/offload: {resp.status_code} {resp.text[:300]}")
        job = resp.json()
        while str(job.get("state")) in JOB_RUNNING:
            time.sleep(POLL_S)
            job = op.get(f"/api/v1/offload/{job_id(job)}").json()
        failed = [f for f in job.get("files", []) if f.get("state") in ("failed", "corrupt")]
        if failed:
            result.verified = False
            result.problems.append(f"{session}: {failed}")
        return proc_cpu_s(coord_pid) - cpu0

    def plain() -> float:
        cpu0 = time.process_time()
        for m in manifests:
            _plain_get(agent_http, f"/api/v1/recordings/{m.file_name}", plain_dir / m.file_name)
        return time.process_time() - cpu0

    order = [(result.offload, offload), (result.plain, plain)]
    for side, run in order if r % 2 == 0 else order[::-1]:
        _measure(side, agent_pid, run)
    archived = {str(x["file_name"]): x for x in listed()}
    if any(x.get("archive_state") != "confirmed" for x in archived.values()):
        result.verified = False
        states = {name: x.get("archive_state") for name, x in archived.items()}
        result.problems.append(f"{session}: not every file confirmed: {states}")

    cli_dir = base / "cli"
    plain_archive_dir = base / "plain-archive" / session
    plain_archive_dir.mkdir(parents=True)

    def cli() -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(
            [
                *(sys.executable, "-m", "app.cli", "--url", url, f"--token={operator}"),
                *("download", session, str(cli_dir), "--from", "archive", "--json"),
            ],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0:
            result.verified = False
            result.problems.append(f"camfleet download: {done.returncode} {done.stdout[-500:]}")
        elif not all(f["verified"] for f in json.loads(done.stdout)["files"]):
            result.verified = False
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    def plain_archive() -> float:
        cpu0 = time.process_time()
        for name, rec in archived.items():
            _plain_get(op, f"/api/v1/recordings/{rec['id']}/file", plain_archive_dir / name)
        return time.process_time() - cpu0

    order = [(result.cli, cli), (result.plain_archive, plain_archive)]
    for side, run in order if r % 2 == 0 else order[::-1]:
        _measure(side, coord_pid, run)
    # The round's copies are the bench's own: free the disk for the next round.
    for folder in (plain_dir, plain_archive_dir, cli_dir / session):
        shutil.rmtree(folder, ignore_errors=True)
    for m in manifests:
        (recordings / m.file_name).unlink(missing_ok=True)
    print(
        f"  offload round {r + 1}: offload {result.offload.seconds[-1]:.2f} s, plain "
        f"{result.plain.seconds[-1]:.2f} s; camfleet download {result.cli.seconds[-1]:.2f} s, "
        f"plain from archive {result.plain_archive.seconds[-1]:.2f} s",
        flush=True,
    )
