"""How the dashcam reaches the NAS: the key check, the ssh options and host-key trust, the
rsync command, and the NAS's own SHA-256, as argument lists and pure parsers.

Nothing here runs a program; ``node_agent.dashcam.upload`` runs these through the
``CommandRunner``. Host keys: with ``dashcam.upload.known_hosts`` set, only the keys in that
file are accepted (``StrictHostKeyChecking=yes``); without it the first key seen is kept in
the agent's data folder and any later change is refused (``accept-new``: trust on first use).
"""

from __future__ import annotations

import math
import posixpath
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common.fsutil import private_file_problem
from node_agent.commands import Completed
from node_agent.dashcam.settings import UploadSettings

KNOWN_HOSTS = Path("dashcam") / "known_hosts"  # under the agent's data folder
SHA256_LINE = re.compile(r"^(?P<hex>[0-9a-f]{64}) [ *](?P<path>[^\n]+)\n?$")


def key_problem(key: Path) -> str | None:
    """Why ``key`` may not be used as the upload key (missing, not a file, readable by others),
    with the command that fixes it; None when it is fine. The key's contents are never read."""
    return private_file_problem(
        key,
        "dashcam.upload.ssh_key",
        exposes="the private key",
        missing=f"create it with ssh-keygen -t ed25519 -f {key}",
        after="nothing was uploaded",
    )


def remote_path(dest_path: str, cam_id: str, staged_path: str) -> str:
    """Where a staged file goes on the NAS: ``{dest_path}/{cam_id}/{staged_path}``."""
    return posixpath.join(dest_path.rstrip("/") or "/", cam_id, staged_path)


def sha256sum_command(path: str, hasher: Literal["sha256sum", "openssl"] = "sha256sum") -> str:
    """The remote shell command that hashes ``path`` (quoted, though the patterns of
    ``dest_path``, ``cam_id`` and ``STAGED_PATH`` already keep it shell-safe).

    ``openssl dgst -sha256 -r`` answers ``HEX *PATH``, the line ``sha256sum`` prints for a
    binary read, so one parser reads both. It takes no ``--``: the path is absolute (the
    settings' pattern for ``dest_path``), so it cannot be read as an option."""
    if hasher == "openssl":
        return f"openssl dgst -sha256 -r {shlex.quote(path)}"
    return f"sha256sum -- {shlex.quote(path)}"


def mkdir_command(folder: str) -> str:
    """The remote shell command that creates ``folder`` and its parents."""
    return f"mkdir -p -- {shlex.quote(folder)}"


def short_error(done: Completed) -> str:
    """``exit 12: <the last line it printed>``: a failed call, without its long argv."""
    text = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return f"exit {done.returncode}: {text[-1][:300]}" if text else f"exit {done.returncode}"


def parse_sha256sum(output: str, path: str) -> str:
    """The hex digest from ``sha256sum -- PATH``'s output: exactly one line naming ``path``.

    Anything else (two lines, another path, upper case, a short digest) is a ValueError: a
    NAS whose answer cannot be read does not confirm anything.
    """
    found = SHA256_LINE.match(output)
    if found is None:
        raise ValueError(f"unreadable sha256sum output: {output[:200]!r}")
    if found["path"] != path:
        raise ValueError(f"sha256sum answered for {found['path']!r}, not {path!r}")
    return found["hex"]


@dataclass(frozen=True)
class Remote:
    """The NAS as ssh and rsync address it, for one upload run."""

    host: str
    user: str
    port: int
    key: Path
    known_hosts: Path
    host_key_checking: Literal["yes", "accept-new"]
    connect_timeout_s: float
    ssh: str = "ssh"
    control_path: str | None = None  # one shared connection for the run (ControlMaster)

    @classmethod
    def from_settings(
        cls,
        s: UploadSettings,
        data_dir: Path,
        *,
        ssh: str = "ssh",
        control_path: str | None = None,
    ) -> Remote:
        """The NAS of ``dashcam.upload``; host keys in ``known_hosts`` or the data folder."""
        if s.known_hosts is not None:
            known, checking = s.known_hosts, "yes"
        else:
            known, checking = data_dir / KNOWN_HOSTS, "accept-new"
        return cls(
            s.host,
            s.user,
            s.port,
            s.ssh_key,
            known,
            checking,  # type: ignore[arg-type]
            s.connect_timeout_s,
            ssh,
            control_path,
        )

    def ssh_options(self) -> list[str]:
        """Options for every ssh call: this key only, no prompts, a bounded connect, strict
        host keys, and a dead link noticed within a minute."""
        opts = [
            *("-i", str(self.key), "-p", str(self.port)),
            *("-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"),
            *("-o", f"ConnectTimeout={max(1, math.ceil(self.connect_timeout_s))}"),
            *("-o", f"StrictHostKeyChecking={self.host_key_checking}"),
            *("-o", f"UserKnownHostsFile={self.known_hosts}"),
            *("-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"),
        ]
        if self.control_path is not None:
            opts += [
                *("-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}"),
                *("-o", "ControlPersist=60"),
            ]
        return opts

    @property
    def login(self) -> str:
        return f"{self.user}@{self.host}"

    def ssh_argv(self, command: str) -> list[str]:
        """``ssh OPTIONS user@host COMMAND`` (``COMMAND`` is one string for the remote shell)."""
        return [self.ssh, *self.ssh_options(), self.login, command]

    def rsync_shell(self) -> str:
        """rsync's ``-e``: the ssh command line, quoted as rsync splits it."""
        return shlex.join([self.ssh, *self.ssh_options()])

    def rsync_target(self, path: str) -> str:
        """``user@host:path``, with an IPv6 address in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{path}"

    def where(self, path: str) -> str:
        """The manifest's ``offloaded_to``: ``rsync:user@host:port/path``."""
        return f"rsync:{self.user}@{self.host}:{self.port}{path}"

    def fatal_error(self, stderr: str) -> str | None:
        """What to do about a failure no retry can fix (ssh's own words in ``stderr``), or
        None for one worth retrying (a dropped link, a busy NAS)."""
        if "REMOTE HOST IDENTIFICATION HAS CHANGED" in stderr or "verification failed" in stderr:
            name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
            return (
                f"the NAS's host key is not the one in {self.known_hosts}, so ssh refused it: "
                "if the NAS was reinstalled, check its new key and remove the old one with "
                f"`ssh-keygen -R '{name}' -f {self.known_hosts}`"
            )
        if "Permission denied" in stderr:
            return (
                f"the NAS refused the key {self.key} for {self.login}: add its public key to "
                f"the authorized_keys of {self.user} on the NAS"
            )
        return None

    def close_argv(self) -> list[str]:
        """Ask the shared connection's master to exit (the run is over)."""
        if self.control_path is None:
            raise ValueError("no shared connection")
        return [self.ssh, "-o", f"ControlPath={self.control_path}", "-O", "exit", self.login]


def rsync_argv(
    rsync: str,
    flags: list[str],
    remote: Remote,
    local: Path,
    dest: str,
    *,
    repair: bool,
    io_timeout_s: int,
) -> list[str]:
    """``rsync FLAGS [--checksum] --timeout=N -e SSH LOCAL user@host:DEST``.

    ``repair``: the file was tried before, so the NAS may hold a copy of the right size and
    time but wrong bytes; ``--checksum`` makes rsync compare contents instead of trusting
    size and time, and ``--inplace`` then rewrites the blocks that differ.
    """
    argv = [rsync, *flags]
    if repair and "--checksum" not in flags and "-c" not in flags:
        argv.append("--checksum")
    argv += [f"--timeout={io_timeout_s}", "-e", remote.rsync_shell(), "--", str(local)]
    argv.append(remote.rsync_target(dest))
    return argv
