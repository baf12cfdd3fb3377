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
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx
import yaml

CAMERAS = (("CAM_L", "left"), ("CAM_C", "centre"), ("CAM_R", "right"))

# Mirrors deploy/systemd/camfleet-*.service (tests/test_demo.py checks they agree).
RESTART_SEC = 2.0
# The units keep systemd's start limit; the demo gives up sooner than systemd's default
# (5 starts in 10 s, which RestartSec=2 never reaches) so a broken setting is not retried
# forever while the user watches.
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL_S = 30.0

# Agent settings the demo chooses but a --agent-config file may change. 720p30 H.264 on
# the synthetic camera: three software encoders at this size fit in a laptop's CPU, where
# the agent's default (4K30 H.265 for the Pi rig) would drop most of its frames.
AGENT_DEFAULTS: dict[str, Any] = {
    "heartbeat_interval_s": 1,
    "join_backoff_max_s": 5,
    "camera": {"source": "synthetic", "width": 1280, "height": 720, "fps": 30.0},
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


def _terminate(children: list[Child], deadline: float) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()


def stop_all(children: list[Child], timeout_s: float = 25.0) -> None:
    """SIGTERM the agents and wait for them (they finish any recording and can still report
    it), then the coordinator; kill stragglers at the deadline."""
    deadline = time.monotonic() + timeout_s
    _terminate([c for c in children if c.name != "coordinator"], deadline)
    _terminate([c for c in children if c.name == "coordinator"], deadline)


def describe_exit(returncode: int) -> str:
    """'exited with code 1' or 'killed by SIGKILL'."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


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


@dataclass(frozen=True)
class ChildSpec:
    """Everything needed to start (and restart) one child."""

    name: str
    program: str
    port: int
    env: dict[str, str]
    log: Path


@dataclass
class RestartPolicy:
    """When to start a child again: always, after ``restart_sec``; not after ``burst`` exits
    within ``interval_s`` (systemd's Restart=always, RestartSec=, StartLimitBurst=)."""

    restart_sec: float = RESTART_SEC
    burst: int = START_LIMIT_BURST
    interval_s: float = START_LIMIT_INTERVAL_S
    exits: list[float] = field(default_factory=list)

    def exited(self, now: float) -> float | None:
        """Record an exit at ``now``; the time to restart at, or None to give up."""
        self.exits = [t for t in self.exits if now - t < self.interval_s] + [now]
        if len(self.exits) >= self.burst:
            return None
        return now + self.restart_sec

    @property
    def recent(self) -> int:
        """Exits counted in the current window."""
        return len(self.exits)


@dataclass
class Supervisor:
    """Runs the children, reports every start and exit, restarts what exits unasked."""

    specs: list[ChildSpec]
    out: TextIO = sys.stdout
    clock: Callable[[], float] = time.monotonic
    policy: Callable[[], RestartPolicy] = RestartPolicy
    children: dict[str, Child] = field(default_factory=dict)
    policies: dict[str, RestartPolicy] = field(default_factory=dict)
    restart_at: dict[str, float] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)

    def say(self, text: str) -> None:
        """One line of the demo's own report."""
        print(f"camfleet demo: {text}", file=self.out, flush=True)

    def start(self, spec: ChildSpec, again: bool = False) -> Child:
        """Start one child and say which process it is."""
        child = spawn(spec.name, spec.program, spec.port, spec.env, spec.log)
        self.children[spec.name] = child
        self.policies.setdefault(spec.name, self.policy())
        verb = "restarted" if again else "started"
        self.say(f"{verb} {spec.name:<11} pid {child.proc.pid:<7} port {spec.port}  log {spec.log}")
        return child

    def tick(self) -> None:
        """Report children that exited, schedule their restart, and start those that are due."""
        now = self.clock()
        for name, child in list(self.children.items()):
            code = child.proc.poll()
            if code is None:
                continue
            del self.children[name]
            policy = self.policies[name]
            when = policy.exited(now)
            what = f"{name} (pid {child.proc.pid}) {describe_exit(code)}"
            if when is None:
                self.failed.add(name)
                self.say(
                    f"{what}; it exited {policy.recent} times in {policy.interval_s:g} s, "
                    f"so it is not restarted (see {self.spec(name).log})"
                )
            else:
                self.restart_at[name] = when
                self.say(f"{what}; restarting it in {policy.restart_sec:g} s")
        for name, when in list(self.restart_at.items()):
            if when <= now:
                del self.restart_at[name]
                self.start(self.spec(name), again=True)

    def spec(self, name: str) -> ChildSpec:
        """The spec of the child called ``name``."""
        return next(s for s in self.specs if s.name == name)

    def stop(self) -> None:
        """Cancel pending restarts and stop what runs: agents first, then the coordinator."""
        self.restart_at.clear()
        stop_all(list(self.children.values()))
        self.children.clear()


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


def log_tail(log: Path, lines: int = 15) -> str:
    """The last lines of a child's log, indented, for an error message."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    " + line for line in text)


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
    operator = os.environ.get("CAMFLEET_OPERATOR_TOKEN") or secrets.token_urlsafe(24)
    fleet_token = os.environ.get("CAMFLEET_FLEET_TOKEN") or secrets.token_urlsafe(24)
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
