"""``camfleet demo``: a coordinator and three synthetic cameras (CAM_L, CAM_C, CAM_R) on loopback."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

CAMERAS = (("CAM_L", "left"), ("CAM_C", "centre"), ("CAM_R", "right"))


@dataclass
class Child:
    """One program the demo started."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int


def clean_env() -> dict[str, str]:
    """The environment without any CAMFLEET_ setting (each child gets exactly its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CAMFLEET_")}


def spawn(name: str, program: str, port: int, env: dict[str, str], log: Path) -> Child:
    """Start ``camfleet <program>`` as a child in its own process group, logging to ``log``."""
    full = clean_env() | env | {"CAMFLEET_HOST": "127.0.0.1", "CAMFLEET_PORT": str(port)}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", program, "--log-level", "warning"],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Child(name, proc, port)


def wait_healthy(children: list[Child], timeout_s: float = 30.0) -> None:
    """Wait until every child answers /health; raise with the log hint if one dies."""
    deadline = time.monotonic() + timeout_s
    pending = list(children)
    while pending:
        for child in list(pending):
            if child.proc.poll() is not None:
                raise RuntimeError(f"{child.name} exited with code {child.proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{child.port}/health", timeout=1).status_code == 200:
                    pending.remove(child)
            except httpx.HTTPError:
                pass
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"not healthy after {timeout_s:g} s: {[c.name for c in pending]}")
        time.sleep(0.1)


def stop_all(children: list[Child], timeout_s: float = 25.0) -> None:
    """SIGTERM agents first (they finish any recording), then the coordinator; kill stragglers."""
    for child in sorted(children, key=lambda c: c.name == "coordinator"):
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for child in children:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def run(port: int, data_dir: str, width: int, height: int, fps: float) -> int:
    """Start the fleet, print how to use it, and keep it up until Ctrl-C or SIGTERM."""
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    operator = os.environ.get("CAMFLEET_OPERATOR_TOKEN") or secrets.token_urlsafe(24)
    fleet_token = os.environ.get("CAMFLEET_FLEET_TOKEN") or secrets.token_urlsafe(24)
    coordinator_url = f"http://127.0.0.1:{port}"

    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    children = [
        spawn(
            "coordinator",
            "coordinator",
            port,
            {
                "CAMFLEET_OPERATOR_TOKEN": operator,
                "CAMFLEET_FLEET_TOKEN": fleet_token,
                "CAMFLEET_DATA_DIR": str(root / "coordinator"),
                "CAMFLEET_POLL_INTERVAL_S": "2",
                "CAMFLEET_HEARTBEAT_INTERVAL_S": "2",
            },
            root / "logs" / "coordinator.log",
        )
    ]
    try:  # agents that start after the coordinator join on their first try
        wait_healthy(children)
    except RuntimeError as err:
        print(f"camfleet demo: {err}; see {root / 'logs' / 'coordinator.log'}", file=sys.stderr)
        stop_all(children)
        return 1
    for i, (cam_id, position) in enumerate(CAMERAS, start=1):
        children.append(
            spawn(
                cam_id,
                "agent",
                port + i,
                {
                    "CAMFLEET_NODE_ID": cam_id.lower().replace("_", "-"),
                    "CAMFLEET_CAM_ID": cam_id,
                    "CAMFLEET_POSITION": position,
                    "CAMFLEET_DATA_DIR": str(root / cam_id),
                    "CAMFLEET_COORDINATOR_URL": coordinator_url,
                    "CAMFLEET_FLEET_TOKEN": fleet_token,
                    "CAMFLEET_HEARTBEAT_INTERVAL_S": "2",
                    "CAMFLEET_JOIN_BACKOFF_MAX_S": "5",
                    "CAMFLEET_CAMERA__SOURCE": "synthetic",
                    "CAMFLEET_CAMERA__WIDTH": str(width),
                    "CAMFLEET_CAMERA__HEIGHT": str(height),
                    "CAMFLEET_CAMERA__FPS": str(fps),
                },
                root / "logs" / f"{cam_id}.log",
            )
        )

    try:
        wait_healthy(children)
    except RuntimeError as err:
        print(f"camfleet demo: {err}; see the logs in {root / 'logs'}", file=sys.stderr)
        stop_all(children)
        return 1

    print(
        f"""
camfleet demo is running: a coordinator and {len(CAMERAS)} synthetic cameras on loopback.

  Dashboard:       {coordinator_url}/?token={operator}
  Swagger:         {coordinator_url}/docs?token={operator}
  Operator token:  {operator}
  Data and logs:   {root}

Try:
  export CAMFLEET_OPERATOR_TOKEN={operator}
  curl -s -H "Authorization: Bearer $CAMFLEET_OPERATOR_TOKEN" {coordinator_url}/api/v1/nodes
  curl -s -X POST -H "Authorization: Bearer $CAMFLEET_OPERATOR_TOKEN" \\
       -H 'Content-Type: application/json' -d '{{"name":"kick-off"}}' {coordinator_url}/api/v1/sessions

Ctrl-C stops everything (recordings in progress are finished first).
""",
        flush=True,
    )
    code = 0
    while not stopping:
        dead = [c for c in children if c.proc.poll() is not None]
        if dead:
            for c in dead:
                print(
                    f"camfleet demo: {c.name} exited with code {c.proc.returncode}", file=sys.stderr
                )
            code = 1
            break
        time.sleep(0.2)
    print("camfleet demo: stopping (finishing recordings)...", flush=True)
    stop_all(children)
    print("camfleet demo: stopped.", flush=True)
    return code
