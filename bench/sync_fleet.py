"""The sync benchmark's fleet: N namespaces, each with a shifted-clock agent and chronyd,
behind one jitter process, following one master; set up and torn down as one unit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from app.demo import Child
from app.fleet.client import NodeAddress
from bench import clockshift, netns, sync_chrony
from bench.common import LOOPBACK, BenchError, Children, free_port, log_tail, spawn_command
from bench.common import wait_listening as wait_healthy
from node_agent.settings import GateSettings

AGENT_PORT = 8080  # inside each namespace
CAMERA = {
    "CAMFLEET_CAMERA__SOURCE": "synthetic",
    "CAMFLEET_CAMERA__WIDTH": "160",
    "CAMFLEET_CAMERA__HEIGHT": "120",
    "CAMFLEET_CAMERA__FPS": "30",
}


@dataclass
class Node:
    index: int
    ns: netns.Namespace
    shift_ns: int
    proxy_port: int  # the coordinator's way in: 127.0.0.1:proxy_port -> agent
    agent: Child | None = None
    chronyd: Child | None = None
    address: NodeAddress | None = None

    @property
    def node_id(self) -> str:
        return f"sync-{self.index:02d}"

    def reading(self) -> sync_chrony.Reading | None:
        return sync_chrony.read_tracking(self.ns.node_addr, sync_chrony.CLIENT_CMDPORT)


@dataclass
class Fleet:
    work: Path
    children: Children
    nodes: list[Node]
    jitter: Child
    shim: Path
    master_port: int
    relay_port: int
    minpoll: int
    maxpoll: int

    def start_chronyd(self, node: Node) -> None:
        """(Re)start the node's chronyd in its namespace on its shifted clock."""
        if node.chronyd is not None:
            self.children.stop([node.chronyd])
        conf = sync_chrony.client_conf(
            self.work,
            node.node_id,
            node.ns.host_addr,
            self.relay_port,
            self.minpoll,
            self.maxpoll,
        )
        env = clockshift.shifted_env(node.shift_ns, self.work, self.shim)
        argv = node.ns.exec_argv(clockshift.env_argv(env, sync_chrony.chronyd_argv(conf)))
        log = self.work / f"{node.node_id}.chronyd.log"
        node.chronyd = self.children.add(
            spawn_command(f"{node.node_id}-chronyd", argv, {}, log, sync_chrony.CLIENT_CMDPORT)
        )

    def jitter_on(self) -> None:
        self.jitter.proc.send_signal(signal.SIGUSR1)

    def wait_synced(self, timeout_s: float) -> None:
        """Until every client follows the master (through its relay)."""
        deadline = time.monotonic() + timeout_s
        while True:
            pending = [n for n in self.nodes if not sync_chrony.synced(n.reading(), n.ns.host_addr)]
            if not pending:
                return
            for n in pending:
                if n.chronyd is not None and n.chronyd.proc.poll() is not None:
                    log = self.work / f"{n.node_id}.chronyd.log"
                    raise BenchError(f"{n.node_id}'s chronyd exited:\n{log_tail(log)}")
            if time.monotonic() > deadline:
                names = ", ".join(n.node_id for n in pending)
                raise BenchError(f"chronyd did not synchronise in {timeout_s:g} s: {names}")
            time.sleep(0.5)


def shifts_ns(n: int) -> list[int]:
    """Node i's shift: alternating sign, 4 to 40 ms, with a fraction so none is round."""
    out = []
    for i in range(n):
        mag = 4.0 + (36.0 * i / (n - 1) if n > 1 else 0.0) + 0.137 * (i + 1)
        out.append(round((mag if i % 2 == 0 else -mag) * 1e6))
    return out


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _agent_env(node: Node, work: Path, relay_port: int) -> dict[str, str]:
    cmd = sync_chrony.CLIENT_CMDPORT
    env = {
        "CAMFLEET_NODE_ID": node.node_id,
        "CAMFLEET_CAM_ID": f"CAM_{node.index:02d}",
        "CAMFLEET_DATA_DIR": str(work / node.node_id),
        "CAMFLEET_HOST": node.ns.node_addr,
        "CAMFLEET_PORT": str(AGENT_PORT),
        "CAMFLEET_CHRONYC_PATH": sync_chrony.chronyc_path(),
        "CAMFLEET_CHRONYC_ARGS": json.dumps(["-h", LOOPBACK, "-p", str(cmd)]),
        "CAMFLEET_CLOCK_POLL_INTERVAL_S": "2",
        "CAMFLEET_SYNC__ROLE": "client",
        "CAMFLEET_SYNC__MASTER_HOST": node.ns.host_addr,
        "CAMFLEET_SYNC__MASTER_PORT": str(relay_port),
        "CAMFLEET_SYNC__CHRONYC_HOST": LOOPBACK,
        "CAMFLEET_SYNC__CHRONYC_PORT": str(cmd),
        # The gate's view is reported (its warnings), not allowed to stop the trials.
        "CAMFLEET_GATES__CLOCK_POLICY": "warn",
    } | CAMERA
    if "max_clock_offset_ms" in GateSettings.model_fields:
        # The old offset gate refuses any |offset| over 5 ms, and these clocks are shifted
        # by up to 40 ms on purpose (the offset is corrected, not removed).
        env["CAMFLEET_GATES__MAX_CLOCK_OFFSET_MS"] = "1000"
    return env


def _spawn_agent(node: Node, work: Path, relay_port: int, children: Children) -> None:
    env = _agent_env(node, work, relay_port)
    python = [sys.executable, "-m", "app.cli", "agent", "--log-level", "warning"]
    argv = node.ns.exec_argv(
        clockshift.env_argv(clockshift.shifted_env(node.shift_ns, work), python)
    )
    log = work / f"{node.node_id}.agent.log"
    node.agent = children.add(spawn_command(node.node_id, argv, env, log, node.proxy_port))


def _wait_line(log: Path, child: Child, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text(errors="replace")):
        if child.proc.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"{child.name} did not print {text!r}:\n{log_tail(log)}")
        time.sleep(0.1)


@contextlib.contextmanager
def fleet(
    work: Path, n: int, delay_ms: float, jitter_ms: float, seed: str, minpoll: int, maxpoll: int
) -> Iterator[Fleet]:
    """Namespaces, master, jitter process (clean until ``jitter_on``), chronyds, agents."""
    work.mkdir(parents=True, exist_ok=True)
    children = Children()
    with netns.namespaces(n) as spaces:
        try:
            shim = clockshift.build_shim(work)
            master_port, master_cmd = _free_udp_port(), _free_udp_port()
            conf = sync_chrony.master_conf(work, master_port, master_cmd)
            children.add(
                spawn_command(
                    "master-chronyd",
                    sync_chrony.chronyd_argv(conf),
                    {},
                    work / "master.log",
                    master_cmd,
                )
            )
            relay_port = _free_udp_port()
            nodes = [
                Node(i + 1, ns, shift, free_port())
                for i, (ns, shift) in enumerate(zip(spaces, shifts_ns(n), strict=True))
            ]
            argv = ["-m", "bench.jitter", "--seed", seed, "--clean"]
            argv += ["--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)]
            for node in nodes:
                argv += ["--tcp", f"{LOOPBACK}:{node.proxy_port}:{node.ns.node_addr}:{AGENT_PORT}"]
                argv += ["--udp", f"{node.ns.host_addr}:{relay_port}:{LOOPBACK}:{master_port}"]
            jlog = work / "jitter.log"
            jitter = children.add(spawn_command("jitter", [sys.executable, *argv], {}, jlog, 0))
            _wait_line(jlog, jitter, "ready", 30)
            f = Fleet(
                work, children, nodes, jitter, shim, master_port, relay_port, minpoll, maxpoll
            )
            for node in nodes:
                f.start_chronyd(node)
                _spawn_agent(node, work, relay_port, children)
            agents = [node.agent for node in nodes if node.agent is not None]
            logs = [work / f"{node.node_id}.agent.log" for node in nodes]
            asyncio.run(wait_healthy([a.port for a in agents], agents, logs, timeout_s=60 + 5 * n))
            for node in nodes:
                token = (work / node.node_id / "api_token").read_text().strip()
                node.address = NodeAddress(node.node_id, LOOPBACK, node.proxy_port, token)
            yield f
        finally:
            children.stop(timeout_s=30)
