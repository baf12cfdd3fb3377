"""A throwaway OpenSSH server on a loopback port: the "NAS" of the dashcam upload's tests and
benchmark, written once here and reused by ``tests/sshd.py``.

``running_sshd(root)`` generates a host key and a user key (ed25519, mode 0600), writes an
``sshd_config`` that accepts only that user key (``AuthorizedKeysFile`` in ``root``), starts
``/usr/sbin/sshd -D -e -f CONFIG`` listening on 127.0.0.1 only, waits until its port accepts,
and writes a ``known_hosts`` with the host key, so a client can use
``StrictHostKeyChecking=yes``. The server is stopped when the ``with`` block ends.

Debian's openssh-server provides ``sshd``; it needs its privilege-separation folder
``/run/sshd``, created here if missing. ``StrictModes no`` lets the keys live in a temp folder;
``PermitRootLogin prohibit-password`` lets the tests (which run as root) log in with the key.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import free_port

LOOPBACK = "127.0.0.1"
SSHD = "/usr/sbin/sshd"  # sshd refuses to re-exec unless started by its absolute path
PRIVSEP_DIR = Path("/run/sshd")


class SshdError(RuntimeError):
    """sshd could not be started; the message has the end of its log."""


@dataclass(frozen=True)
class Sshd:
    """A running throwaway sshd and what a client needs to reach it."""

    host: str
    port: int
    user: str
    client_key: Path  # private, mode 0600
    known_hosts: Path  # "[127.0.0.1]:PORT ssh-ed25519 ..."
    log: Path
    pid: int

    def ssh_argv(self) -> list[str]:
        """``ssh`` with the options that reach this server strictly (for a plain baseline)."""
        return [
            *("ssh", "-i", str(self.client_key), "-p", str(self.port)),
            *("-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"),
            *("-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}"),
        ]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    path.chmod(0o600)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.5) as s:
            s.settimeout(0.5)
            return s.recv(4).startswith(b"SSH-")  # the banner: sshd is really serving
    except OSError:
        return False


@contextlib.contextmanager
def running_sshd(root: Path, timeout_s: float = 15.0) -> Iterator[Sshd]:
    """Start a throwaway sshd with its keys under ``root``; stop it when the block ends."""
    root.mkdir(parents=True, exist_ok=True)
    PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
    host_key, client_key = root / "ssh_host_ed25519_key", root / "client_ed25519"
    _keygen(host_key, "camfleet-test-host")
    _keygen(client_key, "camfleet-test-client")
    authorized = root / "authorized_keys"
    authorized.write_text((root / "client_ed25519.pub").read_text())
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"Port {port}",
                f"ListenAddress {LOOPBACK}",
                f"HostKey {host_key}",
                f"PidFile {root / 'sshd.pid'}",
                f"AuthorizedKeysFile {authorized}",
                "StrictModes no",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "X11Forwarding no",
                "AllowTcpForwarding no",
                "PrintMotd no",
                "LogLevel VERBOSE",
                "",
            ]
        )
    )
    host_pub = (root / "ssh_host_ed25519_key.pub").read_text().split()
    known_hosts = root / "known_hosts"
    known_hosts.write_text(f"[{LOOPBACK}]:{port} {host_pub[0]} {host_pub[1]}\n")
    log = root / "sshd.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not _accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SshdError(
                    f"sshd on port {port} did not start (exit {proc.poll()}):\n"
                    + log.read_text(errors="replace")[-2000:]
                )
            time.sleep(0.05)
        yield Sshd(LOOPBACK, port, getpass.getuser(), client_key, known_hosts, log, proc.pid)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def proc_cpu_s(pid: int, children: bool = True) -> float:
    """utime + stime of ``pid`` and (``children``) of its reaped descendants, in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")
