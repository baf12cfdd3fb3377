"""Runs programs as children the way systemd runs the units in deploy/systemd/ on a Pi.

``Restart=always`` with ``RestartSec=``: a child that exits is reported (which one, how
it ended) and started again after a delay; one that keeps dying is given up on, as
``StartLimitBurst`` would. ``camfleet demo`` and the tests start their programs here.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import httpx

# Mirrors deploy/systemd/camfleet-*.service (tests/test_demo.py checks they agree).
RESTART_SEC = 2.0

# The units give up after StartLimitBurst=5 starts in StartLimitIntervalSec=300; the demo
# keeps the burst over a shorter window: a broken setting (which dies within seconds of
# each start) is still given up on within about 15 s, while a user who kills a camera now
# and then in the failure tour (README) sees it come back unless it is 5 times in 30 s.
START_LIMIT_BURST = 5
START_LIMIT_INTERVAL_S = 30.0


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
    if program == "agent" and "CAMFLEET_STATUS_FILE" not in env and "CAMFLEET_DATA_DIR" in env:
        # Several agents on one machine: each keeps its status file in its own folder.
        full["CAMFLEET_STATUS_FILE"] = str(Path(env["CAMFLEET_DATA_DIR"]) / "status.json")
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


def log_tail(log: Path, lines: int = 15) -> str:
    """The last lines of a child's log, indented, for an error message."""
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "\n".join("    " + line for line in text)
