"""The sync benchmark's chronyds: an unshifted master in the root namespace and one
``chronyd -x`` client per node namespace, and reading their tracking reports.

Every instance runs in the foreground (``-d``) with its own config, pid file and command
port, and with its Unix command socket disabled (``bindcmdaddress /``), so several run
side by side and none touches the system clock (``-x``) or the machine's own chronyd.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.common import BenchError
from node_agent.telemetry.chrony import ChronyTracking, TrackingParseError, parse_tracking

CLIENT_CMDPORT = 10323  # inside each node's namespace; nothing else listens there


def chronyd_path() -> str:
    return shutil.which("chronyd") or "/usr/sbin/chronyd"


def chronyc_path() -> str:
    return shutil.which("chronyc") or "/usr/bin/chronyc"


def master_conf(work: Path, ntp_port: int, cmdport: int, stratum: int = 8) -> Path:
    """The fleet's master: serves its own (true) clock to the relays on loopback."""
    conf = work / "master.conf"
    conf.write_text(
        f"port {ntp_port}\nbindaddress 127.0.0.1\ncmdport {cmdport}\nbindcmdaddress 127.0.0.1\n"
        f"bindcmdaddress /\nlocal stratum {stratum}\nallow 127.0.0.1\n"
        f"pidfile {work}/master.pid\n"
    )
    return conf


def client_conf(
    work: Path, name: str, server: str, server_port: int, minpoll: int, maxpoll: int
) -> Path:
    """A node's client: follows the master through its relay; answers chronyc from the
    agent (127.0.0.1) and from the bench (its veth address)."""
    conf = work / f"{name}.conf"
    conf.write_text(
        f"port 0\ncmdport {CLIENT_CMDPORT}\nbindcmdaddress 0.0.0.0\nbindcmdaddress /\n"
        f"cmdallow all\nserver {server} port {server_port} iburst minpoll {minpoll} "
        f"maxpoll {maxpoll}\npidfile {work}/{name}.pid\n"
    )
    return conf


def chronyd_argv(conf: Path) -> list[str]:
    return [chronyd_path(), "-d", "-x", "-u", "root", "-f", str(conf)]


@dataclass(frozen=True)
class Reading:
    """One tracking report and what it bounds."""

    tracking: ChronyTracking

    @property
    def offset_ns(self) -> int:
        return self.tracking.offset_ns

    @property
    def residual_bound_ns(self) -> int:
        """Root dispersion + root delay / 2: how far the offset itself may be wrong."""
        t = self.tracking
        return round((t.root_dispersion_s + t.root_delay_s / 2) * 1e9)

    @property
    def bound_ns(self) -> int:
        """The contract's bound: |offset| + root dispersion + root delay / 2."""
        return abs(self.offset_ns) + self.residual_bound_ns


def read_tracking(host: str, cmdport: int, timeout_s: float = 5.0) -> Reading | None:
    """``chronyc -c tracking`` of the chronyd at host:cmdport; None when it does not answer."""
    try:
        proc = subprocess.run(
            [chronyc_path(), "-h", host, "-p", str(cmdport), "-c", "-n", "tracking"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if proc.returncode != 0:
            return None
        return Reading(parse_tracking(proc.stdout))
    except (OSError, subprocess.SubprocessError, TrackingParseError):
        return None


def synced(reading: Reading | None, reference: str | None = None) -> bool:
    """Synchronised (to ``reference`` when given)."""
    if reading is None or not reading.tracking.synchronized:
        return False
    return reference is None or reading.tracking.ref_name == reference


def require(reading: Reading | None, what: str) -> Reading:
    if reading is None:
        raise BenchError(f"{what}: chronyc got no tracking report")
    return reading
