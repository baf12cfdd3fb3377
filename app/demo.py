"""camfleet demo: a coordinator and three synthetic cameras (CAM_L, CAM_C, CAM_R) on loopback.

The demo supervises its children the way the systemd units in deploy/systemd/ do on a Pi
(Restart=always, RestartSec=2): a child that exits is reported and started again, so the
failure cases can be tried by killing processes. A child that keeps dying is given up on
(START_LIMIT_BURST exits within START_LIMIT_INTERVAL_S, like systemd's StartLimitBurst).

Settings of each child, lowest to highest priority:
  1. the demo's defaults (synthetic camera at 1280x720, short poll and heartbeat intervals),
  2. the user's --agent-config / --coordinator-config YAML file,
  3. --width/--height/--fps when given on the command line (agents only),
  4. what makes the fleet a fleet, set by the demo in each child's environment and never
     taken from the file: identity (node_id, cam_id, position), host, port, data_dir,
     coordinator_url and the tokens.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import yaml

from app.supervise import (
    RESTART_SEC,
    START_LIMIT_BURST,
    START_LIMIT_INTERVAL_S,
    Child,
    ChildSpec,
    RestartPolicy,
    Supervisor,
    clean_env,
    describe_exit,
    log_tail,
    spawn,
    stop_all,
    wait_healthy,
)
from common.settings import new_token

__all__ = [
    "RESTART_SEC",
    "START_LIMIT_BURST",
    "START_LIMIT_INTERVAL_S",
    "Child",
    "ChildSpec",
    "RestartPolicy",
    "Supervisor",
    "clean_env",
    "describe_exit",
    "log_tail",
    "spawn",
    "stop_all",
    "wait_healthy",
]

CAMERAS = (("CAM_L", "left"), ("CAM_C", "centre"), ("CAM_R", "right"))


# Agent settings the demo chooses but a --agent-config file may change. 720p30 H.264 on
# the synthetic camera: three software encoders at this size fit in a laptop's CPU, where
# the agent's default (4K30 H.265 for the Pi rig) would drop most of its frames.
AGENT_DEFAULTS: dict[str, Any] = {
    "heartbeat_interval_s": 1,
    "join_backoff_max_s": 5,
    "camera": {"source": "synthetic", "width": 1280, "height": 720, "fps": 30.0},
    # Three agents on one machine share its clock and run no chrony of their own: the
    # clock gate warns instead of refusing (a real rig keeps the default, refuse).
    "gates": {"clock_policy": "warn"},
}
# Short intervals so a killed agent shows offline within seconds, and back soon after.
COORDINATOR_DEFAULTS: dict[str, Any] = {
    "poll_interval_s": 1,
    "heartbeat_interval_s": 1,
    "offline_after_s": 3,
}
# camera.profiles and the one-profile shorthand exclude each other (CameraSettings).
CAMERA_SHORTHAND = ("width", "height", "fps", "codec", "bitrate_bps")


class DemoError(Exception):
    """The demo cannot start as asked; the message says why."""


def merge_settings(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base``; a camera.profiles list replaces the shorthand."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            below = dict(out[key])
            if key == "camera" and "profiles" in value:
                below = {k: v for k, v in below.items() if k not in CAMERA_SHORTHAND}
            out[key] = merge_settings(below, value)
        else:
            out[key] = value
    return out


def read_settings_file(path: str | None, option: str) -> dict[str, Any]:
    """The YAML mapping in ``path`` ({} when none), or DemoError naming the option."""
    if path is None:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise DemoError(f"{option} {path}: {err}") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DemoError(
            f"{option} {path}: expected a mapping of settings, not {type(data).__name__}"
        )
    return data


OPEN_STATES = ("starting", "recording", "stopping")


def stop_open_sessions(url: str, token: str, timeout_s: float = 20.0) -> list[str]:
    """Stop every session still open, through the coordinator, so that Ctrl-C leaves none
    recording and every manifest is collected. When the coordinator cannot be reached the
    agents still finish their files, and the coordinator settles the sessions when it is
    started again (``app.sessions.reconcile``)."""
    said = []
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=timeout_s) as client:
            listing = client.get("/api/v1/sessions", params={"limit": 500})
            listing.raise_for_status()
            for session in listing.json()["sessions"]:
                if session["state"] not in OPEN_STATES:
                    continue
                answer = client.post(f"/api/v1/sessions/{session['session_id']}/stop")
                state = answer.json().get("state") if answer.is_success else answer.status_code
                said.append(f"stopped session {session['session_id']}: {state}")
    except (httpx.HTTPError, ValueError, KeyError) as err:
        said.append(f"could not stop open sessions ({err}); the coordinator settles them later")
    return said


def write_config(path: Path, settings: Mapping[str, Any]) -> Path:
    """Write one child's merged settings as YAML (the child reads it as its config file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Written by camfleet demo: its defaults, then --*-config, then --width/--height/--fps.\n"
        + yaml.safe_dump(dict(settings), sort_keys=False)
    )
    return path


def plan(
    root: Path,
    port: int,
    operator: str,
    fleet_token: str,
    agent_file: Mapping[str, Any],
    coordinator_file: Mapping[str, Any],
    camera_flags: Mapping[str, Any],
) -> list[ChildSpec]:
    """The coordinator and the three agents, each with its config file and environment."""
    coordinator_url = f"http://127.0.0.1:{port}"
    coord_settings = merge_settings(COORDINATOR_DEFAULTS, coordinator_file)
    agent_settings = merge_settings(AGENT_DEFAULTS, agent_file)
    if camera_flags:
        if "profiles" in agent_settings.get("camera", {}):
            raise DemoError(
                "--width/--height/--fps cannot be combined with camera.profiles in --agent-config"
            )
        agent_settings = merge_settings(agent_settings, {"camera": dict(camera_flags)})
    config_dir = root / "config"
    specs = [
        ChildSpec(
            "coordinator",
            "coordinator",
            port,
            {
                "CAMFLEET_COORDINATOR_CONFIG": str(
                    write_config(config_dir / "coordinator.yaml", coord_settings)
                ),
                "CAMFLEET_OPERATOR_TOKEN": operator,
                "CAMFLEET_FLEET_TOKEN": fleet_token,
                "CAMFLEET_DATA_DIR": str(root / "coordinator"),
            },
            root / "logs" / "coordinator.log",
        )
    ]
    agent_config = write_config(config_dir / "agent.yaml", agent_settings)
    for i, (cam_id, position) in enumerate(CAMERAS, start=1):
        specs.append(
            ChildSpec(
                cam_id,
                "agent",
                port + i,
                {
                    "CAMFLEET_AGENT_CONFIG": str(agent_config),
                    "CAMFLEET_NODE_ID": cam_id.lower().replace("_", "-"),
                    "CAMFLEET_CAM_ID": cam_id,
                    "CAMFLEET_POSITION": position,
                    "CAMFLEET_DATA_DIR": str(root / cam_id),
                    "CAMFLEET_COORDINATOR_URL": coordinator_url,
                    "CAMFLEET_FLEET_TOKEN": fleet_token,
                },
                root / "logs" / f"{cam_id}.log",
            )
        )
    return specs


def run(
    port: int,
    data_dir: str,
    width: int | None = None,
    height: int | None = None,
    fps: float | None = None,
    agent_config: str | None = None,
    coordinator_config: str | None = None,
) -> int:
    """Start the fleet, print how to use it, and keep it up until Ctrl-C or SIGTERM."""
    root = Path(data_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    operator = os.environ.get("CAMFLEET_OPERATOR_TOKEN") or new_token()
    fleet_token = os.environ.get("CAMFLEET_FLEET_TOKEN") or new_token()
    coordinator_url = f"http://127.0.0.1:{port}"
    flags = {k: v for k, v in (("width", width), ("height", height), ("fps", fps)) if v}
    try:
        specs = plan(
            root,
            port,
            operator,
            fleet_token,
            read_settings_file(agent_config, "--agent-config"),
            read_settings_file(coordinator_config, "--coordinator-config"),
            flags,
        )
    except DemoError as err:
        print(f"camfleet demo: {err}", file=sys.stderr)
        return 2

    stopping = False

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    sup = Supervisor(specs)
    # Agents that start after the coordinator join on their first try; a child that fails
    # here is a setting or a port in use, so the demo says why instead of retrying.
    for group in (specs[:1], specs[1:]):
        try:
            wait_healthy([sup.start(spec) for spec in group])
        except RuntimeError as err:
            print(f"camfleet demo: {err}", file=sys.stderr)
            for spec in group:
                if sup.children[spec.name].proc.poll() is not None:
                    print(f"  {spec.log}:\n{log_tail(spec.log)}", file=sys.stderr)
            sup.stop()
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

A process that exits is restarted after {RESTART_SEC:g} s, as systemd does on a Pi.
Ctrl-C stops everything (recordings in progress are finished first).
""",
        flush=True,
    )
    while not stopping and "coordinator" not in sup.failed:
        sup.tick()
        time.sleep(0.2)
    print("camfleet demo: stopping (finishing recordings)...", flush=True)
    for line in stop_open_sessions(coordinator_url, operator):
        print(f"camfleet demo: {line}", flush=True)
    sup.stop()
    print("camfleet demo: stopped.", flush=True)
    return 1 if sup.failed else 0
