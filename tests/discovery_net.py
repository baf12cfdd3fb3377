"""Two network namespaces for the discovery tests, made and deleted by the test itself.

``c`` holds the coordinator (and the rogue), ``a`` the agent; a veth pair joins them
(``10.<b>.1.1`` and ``10.<b>.1.2``, multicast on, so mDNS flows between them), and a second
pair joins the test's own namespace to ``c`` (``10.<b>.0.1`` here, ``10.<b>.0.2`` there) so
the test can call the coordinator (and, routed through ``c``, the agent). Names carry the creating process's id; a later run
removes what a killed one left. Needs root and iproute2.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

from bench.common import machine_lock
from bench.netns import free_octet, ip, remove_stale
from bench.netns import unavailable as _unavailable

PREFIX = "cfd"
_NAME = re.compile(rf"^{PREFIX}(\d+)[ca]$")
FIRST_OCTET_B = 223


def unavailable() -> str | None:
    """Why the namespaces cannot be made here (None: they can)."""
    return _unavailable(PREFIX)


def _sysctl(ns: str, setting: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", setting], check=True, timeout=20)


@dataclass(frozen=True)
class Pair:
    """The two namespaces and their addresses."""

    c: str  # the coordinator's namespace
    a: str  # the agent's
    a_if: str  # the agent's end of the c-a veth (inside a)
    b: int
    test_to_c: str  # the coordinator as the test reaches it (10.b.0.2)
    c_addr: str  # the coordinator on the c-a link (10.b.1.1)
    a_addr: str  # the agent on the c-a link (10.b.1.2)

    def exec_argv(self, ns: str, argv: list[str]) -> list[str]:
        """``argv`` run inside namespace ``ns``."""
        return ["ip", "netns", "exec", ns, *argv]

    def move_agent(self, new_addr: str) -> None:
        """The agent's address changes (as after DHCP or AP fallback): the new one first,
        then the old one removed."""
        ip("-n", self.a, "addr", "add", f"{new_addr}/24", "dev", self.a_if)
        ip("-n", self.a, "addr", "del", f"{self.a_addr}/24", "dev", self.a_if)
        ip("-n", self.a, "route", "replace", "default", "via", f"10.{self.b}.1.1")


@contextlib.contextmanager
def namespace_pair() -> Iterator[Pair]:
    """Fresh namespaces ``c`` and ``a``; deleted (with their veths) whatever happened."""
    remove_stale(_NAME)
    pid = os.getpid()
    c, a = f"{PREFIX}{pid}c", f"{PREFIX}{pid}a"
    short = pid % 100000
    host_if, c_up, c_down, a_if = (f"{PREFIX}{short}{s}" for s in ("h", "u", "d", "p"))
    made: list[str] = []
    try:
        with machine_lock("netns"):  # another run's choice of b shows once its address does
            b = free_octet(FIRST_OCTET_B)
            for ns in (c, a):
                ip("netns", "add", ns)
                made.append(ns)
                ip("-n", ns, "link", "set", "lo", "up")
                ip("-n", ns, "link", "set", "lo", "multicast", "on")
            ip("link", "add", host_if, "type", "veth", "peer", "name", c_up)
            ip("link", "set", c_up, "netns", c)
            ip("addr", "add", f"10.{b}.0.1/30", "dev", host_if)
            ip("link", "set", host_if, "up")
            ip("-n", c, "addr", "add", f"10.{b}.0.2/30", "dev", c_up)
            ip("-n", c, "link", "set", c_up, "up")
            ip("-n", c, "link", "add", c_down, "type", "veth", "peer", "name", a_if)
            ip("-n", c, "link", "set", a_if, "netns", a)
            ip("-n", c, "addr", "add", f"10.{b}.1.1/24", "dev", c_down)
            ip("-n", c, "link", "set", c_down, "up")
            ip("-n", a, "addr", "add", f"10.{b}.1.2/24", "dev", a_if)
            ip("-n", a, "link", "set", a_if, "up")
            # The test reaches the agent through c: a route over the test's own veth (it
            # goes with the veth), forwarding inside c, and a default route inside a.
            ip("-n", a, "route", "add", "default", "via", f"10.{b}.1.1")
            _sysctl(c, "net.ipv4.ip_forward=1")
            # Removing the agent's first address must keep the second (move_agent).
            _sysctl(a, f"net.ipv4.conf.{a_if}.promote_secondaries=1")
            ip("route", "add", f"10.{b}.1.0/24", "via", f"10.{b}.0.2", "dev", host_if)
        yield Pair(c, a, a_if, b, f"10.{b}.0.2", f"10.{b}.1.1", f"10.{b}.1.2")
    finally:
        for ns in made:
            ip("netns", "del", ns, check=False)
        ip("link", "del", host_if, check=False)
