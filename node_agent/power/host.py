"""The machine adapter of the power monitor: ``sync``, unmount the recordings disk, power off.

Every action is a program run through the ``CommandRunner`` (so ``--dry-run`` logs it and
runs nothing). Which mount holds the recordings is read from ``/proc/self/mountinfo``
(pure parser below, one reader beside it); the root file system and the system's own
mounts are never unmounted, and neither is a memory file system (``tmpfs``): only a disk
of its own, whose cache ``sync`` and ``umount`` flush before the power is cut.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from node_agent.commands import CommandRunner, Completed

log = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
# Mount points that belong to the system: unmounting them is never the power monitor's job
# (systemd does it on the way down, and they are busy anyway).
SYSTEM_MOUNTS = frozenset(
    {"/", "/boot", "/boot/firmware", "/dev", "/etc", "/home", "/opt", "/proc", "/run"}
    | {"/srv", "/sys", "/tmp", "/usr", "/var"}
)
# File systems with no disk behind them: nothing to flush, and unmounting one loses it.
PSEUDO_FS = frozenset(
    {"tmpfs", "ramfs", "proc", "sysfs", "devtmpfs", "devpts", "cgroup", "cgroup2", "overlay"}
    | {"squashfs", "autofs", "debugfs", "tracefs", "securityfs", "pstore", "bpf", "fusectl"}
)
UMOUNT_BUSY = 32  # util-linux umount's exit code for "target is busy" (and other failures)
_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    """One line of mountinfo: where, what and which file system."""

    mount_point: str
    source: str
    fstype: str


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal (``\\040``)."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The mounts in ``/proc/self/mountinfo`` text, in the kernel's order (later ones on top).

    A line is ``id parent major:minor root mount_point options [optional...] - fstype
    source super_options``; malformed lines are skipped.
    """
    mounts: list[Mount] = []
    for line in text.splitlines():
        fields = line.split()
        try:
            dash = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < dash + 3:
            continue
        mounts.append(Mount(_unescape(fields[4]), _unescape(fields[dash + 2]), fields[dash + 1]))
    return mounts


def mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    """The mount that holds ``path`` (absolute, resolved): the deepest mount point above it,
    the last one mounted when several share it."""
    target = PurePosixPath(path)
    best: Mount | None = None
    depth = -1
    for m in mounts:
        point = PurePosixPath(m.mount_point)
        if (target == point or point in target.parents) and len(point.parts) >= depth:
            best, depth = m, len(point.parts)
    return best


def unmountable(mount: Mount | None) -> str | None:
    """None when ``mount`` may be unmounted before a shutdown, else why not."""
    if mount is None:
        return "no mount holds it"
    if mount.mount_point in SYSTEM_MOUNTS:
        return f"it is on {mount.mount_point}, a system mount (never unmounted here)"
    if mount.fstype in PSEUDO_FS:
        return f"{mount.mount_point} is a {mount.fstype} (no disk to flush)"
    return None


def read_mounts(mountinfo: Path = MOUNTINFO) -> list[Mount]:
    """The machine's mounts now (empty when mountinfo cannot be read)."""
    try:
        return parse_mountinfo(mountinfo.read_text())
    except OSError as err:
        log.warning("cannot read %s: %s", mountinfo, err)
        return []


class Host:
    """Syncs, unmounts and powers off the machine, each through the runner."""

    def __init__(
        self,
        runner: CommandRunner,
        shutdown_command: Sequence[str] = ("systemctl", "poweroff"),
        *,
        mountinfo: Path = MOUNTINFO,
        retry_wait_s: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.runner = runner
        self.shutdown_command = list(shutdown_command)
        self.mountinfo = mountinfo
        self.retry_wait_s = retry_wait_s
        self.sleep = sleep

    def sync(self) -> Completed:
        """Flush every file system's cache (``sync``)."""
        return self.runner.run(["sync"], timeout_s=60)

    def recordings_mount(self, recordings: Path) -> tuple[Mount | None, str | None]:
        """The mount to unmount for ``recordings`` and None, or None and why there is none."""
        mount = mount_of(os.path.realpath(recordings), read_mounts(self.mountinfo))
        why = unmountable(mount)
        return (mount, None) if why is None else (None, why)

    def unmount(self, mount_point: str) -> Completed:
        """``umount`` it; a failure (a process still holds a file: busy) is retried once
        after ``retry_wait_s``. Returns the last attempt."""
        done = self.runner.run(["umount", mount_point], timeout_s=60)
        if done.ok:
            return done
        log.warning("unmounting %s failed (%s); retrying once", mount_point, done.describe())
        self.sleep(self.retry_wait_s)
        return self.runner.run(["umount", mount_point], timeout_s=60)

    def poweroff(self) -> Completed:
        """Ask the machine to shut down (``power.shutdown_command``)."""
        return self.runner.run(self.shutdown_command, timeout_s=60)
