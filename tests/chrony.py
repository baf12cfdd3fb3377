"""A real chronyd pair on loopback ports, neither touching the system clock (``-x``).

The master serves ``local stratum 8``; the client follows it with a short poll. The
master can be killed (``pair.kill_master()``) to watch the client lose its source.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHRONYD = shutil.which("chronyd") or "/usr/sbin/chronyd"


@dataclass
class ChronyPair:
    """A reference server (the master) and a client synchronised to it."""

    server_cmdport: int
    client_cmdport: int
    ntp_port: int = 0
    root: Path = Path()
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def chronyc_args(self, which: str = "client") -> tuple[str, ...]:
        port = self.client_cmdport if which == "client" else self.server_cmdport
        return ("-h", "127.0.0.1", "-p", str(port))

    def chronyc(self, which: str, report: str) -> str:
        """``chronyc -c -n REPORT`` of one daemon, as printed."""
        argv = ["chronyc", *self.chronyc_args(which), "-c", "-n", report]
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout

    def kill_master(self) -> None:
        """SIGKILL the master: no goodbye, as when its Pi loses power."""
        proc = self.procs.get("server")
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def wait(self, what: str, ok: Callable[[], bool], timeout_s: float) -> None:
        """Poll ``ok`` until it holds; fail with both daemons' logs after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not ok():
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text() for p in self.root.glob("*.log"))
                raise RuntimeError(f"chronyd pair: {what} within {timeout_s:g} s\n{logs}")
            time.sleep(0.2)

    def client_synchronised(self) -> bool:
        out = self.chronyc("client", "tracking")
        return out.startswith("7F000001,") and out.strip().endswith("Normal")


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def confs(pair: ChronyPair, root: Path, poll: int, master_upstream: int | None) -> dict[str, str]:
    """The two daemons' configurations (the client polls every 2^poll s)."""
    upstream = f"server 127.0.0.1 port {master_upstream} iburst\n" if master_upstream else ""
    return {
        "server": f"port {pair.ntp_port}\ncmdport {pair.server_cmdport}\n"
        f"bindcmdaddress 127.0.0.1\n{upstream}local stratum 8\nallow 127.0.0.1\n"
        f"pidfile {root}/server.pid\n",
        "client": f"port 0\ncmdport {pair.client_cmdport}\nbindcmdaddress 127.0.0.1\n"
        f"server 127.0.0.1 port {pair.ntp_port} iburst minpoll {poll} maxpoll {poll}\n"
        f"pidfile {root}/client.pid\n",
    }


def start_chronyd(name: str, conf: Path, root: Path) -> subprocess.Popen[bytes]:
    """One ``chronyd -d -x`` (foreground, the system clock left alone), logging to a file."""
    with open(root / f"{name}.log", "wb") as log:
        return subprocess.Popen(
            [CHRONYD, "-d", "-x", "-u", "root", "-f", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@contextmanager
def chrony_pair(
    root: Path, wait_sync_s: float = 15.0, poll: int = -4, master_upstream: int | None = None
) -> Iterator[ChronyPair]:
    """Start the pair, wait until the client reports a synchronised clock, stop both after.

    ``master_upstream``: a UDP port the master also lists as its upstream server (give a
    dead one to see a master whose upstream is unreachable)."""
    pair = ChronyPair(
        server_cmdport=_free_udp_port(),
        client_cmdport=_free_udp_port(),
        ntp_port=_free_udp_port(),
        root=root,
    )
    root.mkdir(parents=True, exist_ok=True)
    try:
        for name, text in confs(pair, root, poll, master_upstream).items():
            conf = root / f"{name}.conf"
            conf.write_text(text)
            pair.procs[name] = start_chronyd(name, conf, root)
        pair.wait("the client did not synchronise", pair.client_synchronised, wait_sync_s)
        yield pair
    finally:
        for proc in pair.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


__all__ = ["CHRONYD", "ChronyPair", "chrony_pair", "start_chronyd"]
