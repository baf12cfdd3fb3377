"""Network namespaces for the sync benchmark: one per node, each joined to the root
namespace by a veth pair with a /30 of its own.

Names carry the creating process's id (``cfb<pid>n<i>``), so two runs never collide and
a later run can remove what a killed one left behind (its process is gone). Addresses
are ``10.<b>.<i>.0/30`` with ``b`` chosen so that no address on this machine is in
``10.<b>.0.0/16``. Needs root (``ip netns add``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from bench.common import BenchError, machine_lock

PREFIX = "cfb"
_NAME = re.compile(rf"^{PREFIX}(\d+)n\d+$")
FIRST_OCTET_B = 213


@dataclass(frozen=True)
class Namespace:
    """One node's namespace: its name, the root side's address and the node's."""

    name: str
    host_if: str
    host_addr: str  # the root namespace's end, e.g. 10.213.3.1
    node_addr: str  # the node's end, e.g. 10.213.3.2

    def exec_argv(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``ip ARGS``; raise BenchError with its message when ``check`` and it fails."""
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and proc.returncode != 0:
        raise BenchError(f"ip {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")
    return proc


def unavailable(prefix: str = PREFIX) -> str | None:
    """Why namespaces cannot be made here (None: they can); the probe is named ``prefix``."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip program (iproute2) is not installed"
    probe = f"{prefix}{os.getpid()}probe"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


def existing() -> list[str]:
    """Every namespace on this machine made by this module (any run)."""
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()]


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists (the run that made a namespace)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(names: re.Pattern[str] = _NAME) -> list[str]:
    """Delete namespaces a run that no longer exists left behind; their names. ``names``
    matches a namespace of ours, its group 1 the process id of the run that made it."""
    removed = []
    for name in existing():
        m = names.match(name)
        if m and not alive(int(m.group(1))):
            ip("netns", "del", name, check=False)
            removed.append(name)
    return removed


def free_octet(first: int = FIRST_OCTET_B) -> int:
    """A ``b`` from ``first`` on with no address of this machine in 10.b.0.0/16."""
    used = set(re.findall(r"inet 10\.(\d+)\.", ip("-4", "addr", check=False).stdout))
    for b in range(first, 255):
        if str(b) not in used:
            return b
    raise BenchError("no free 10.b.0.0/16 range for the bench's namespaces")


def delete(namespaces: list[Namespace]) -> None:
    """Delete the namespaces (their veth pairs go with them); never raises."""
    for ns in namespaces:
        with contextlib.suppress(BenchError, OSError, subprocess.SubprocessError):
            ip("netns", "del", ns.name, check=False)
            ip("link", "del", ns.host_if, check=False)


@contextlib.contextmanager
def namespaces(count: int) -> Iterator[list[Namespace]]:
    """``count`` fresh namespaces, deleted on the way out whatever happened."""
    remove_stale()
    pid = os.getpid()
    made: list[Namespace] = []
    try:
        with machine_lock("netns"):  # another run's choice of b shows once its addresses do
            b = free_octet()
            for i in range(1, count + 1):
                ns = Namespace(
                    name=f"{PREFIX}{pid}n{i}",
                    host_if=f"{PREFIX}{pid % 100000}h{i}",
                    host_addr=f"10.{b}.{i}.1",
                    node_addr=f"10.{b}.{i}.2",
                )
                peer_if = f"{PREFIX}{pid % 100000}p{i}"
                ip("netns", "add", ns.name)
                made.append(ns)
                ip("link", "add", ns.host_if, "type", "veth", "peer", "name", peer_if)
                ip("link", "set", peer_if, "netns", ns.name)
                ip("addr", "add", f"{ns.host_addr}/30", "dev", ns.host_if)
                ip("link", "set", ns.host_if, "up")
                inside = ["-n", ns.name]
                ip(*inside, "addr", "add", f"{ns.node_addr}/30", "dev", peer_if)
                ip(*inside, "link", "set", peer_if, "up")
                ip(*inside, "link", "set", "lo", "up")
                ip(*inside, "route", "add", "default", "via", ns.host_addr)
        yield made
    finally:
        delete(made)


__all__ = ["Namespace", "delete", "existing", "namespaces", "remove_stale", "unavailable"]
