"""A real chronyd pair on loopback ports, neither touching the system clock (``-x``)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class ChronyPair:
    """A reference server and a client synchronised to it."""

    server_cmdport: int
    client_cmdport: int

    def chronyc_args(self, which: str = "client") -> tuple[str, ...]:
        port = self.client_cmdport if which == "client" else self.server_cmdport
        return ("-h", "127.0.0.1", "-p", str(port))


def _free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chrony_pair(root: Path, wait_sync_s: float = 15.0) -> Iterator[ChronyPair]:
    """Start the pair, wait until the client reports a synchronised clock, stop both after."""
    chronyd = shutil.which("chronyd") or "/usr/sbin/chronyd"
    ntp_port = _free_udp_port()
    pair = ChronyPair(server_cmdport=_free_udp_port(), client_cmdport=_free_udp_port())
    root.mkdir(parents=True, exist_ok=True)
    confs = {
        "server": f"port {ntp_port}\ncmdport {pair.server_cmdport}\nbindcmdaddress 127.0.0.1\n"
        f"local stratum 8\nallow 127.0.0.1\npidfile {root}/server.pid\n",
        "client": f"port 0\ncmdport {pair.client_cmdport}\nbindcmdaddress 127.0.0.1\n"
        f"server 127.0.0.1 port {ntp_port} iburst minpoll -4 maxpoll -4\n"
        f"pidfile {root}/client.pid\n",
    }
    procs = []
    try:
        for name, text in confs.items():
            conf = root / f"{name}.conf"
            conf.write_text(text)
            with open(root / f"{name}.log", "wb") as log:
                procs.append(
                    subprocess.Popen(
                        [chronyd, "-d", "-x", "-u", "root", "-f", str(conf)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + wait_sync_s
        while True:
            out = subprocess.run(
                ["chronyc", *pair.chronyc_args(), "-c", "-n", "tracking"],
                capture_output=True,
                text=True,
            ).stdout
            if out.startswith("7F000001,") and out.strip().endswith("Normal"):
                break
            if time.monotonic() > deadline:
                logs = "\n".join(p.read_text() for p in root.glob("*.log"))
                raise RuntimeError(f"chronyd pair did not synchronise: {out!r}\n{logs}")
            time.sleep(0.2)
        yield pair
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)


__all__ = ["ChronyPair", "chrony_pair"]
