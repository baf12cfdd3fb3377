"""Mount the camera's storage read-only, and unmount it whatever happens.

The card is mounted ``ro,nosuid,nodev,noexec`` under ``{mount_base}-{device_id}`` (the
seed's ``/mnt/cam-67EF9CED``): copying can never change it, and nothing on it can run.
It is remounted read-write only to delete files whose copy on the NAS was confirmed and
whose bytes on the camera were hashed again (``ingest.clean_camera``). ``mounted_ro``
always ends with ``sync`` and ``umount``, in a ``finally``. Every step goes through the
runner, so ``--dry-run`` logs the plan and mounts nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from node_agent.commands import CommandFailed, CommandRunner

log = logging.getLogger(__name__)

RO_OPTIONS = "ro,nosuid,nodev,noexec"
RW_OPTIONS = "remount,rw,nosuid,nodev,noexec"


@dataclass(frozen=True)
class MountTools:
    """The programs used; tests point them at fakes (or leave the real ones)."""

    mount: str = "mount"
    umount: str = "umount"
    sync: str = "sync"


def mount_point(mount_base: Path, device_id: str) -> Path:
    """``/mnt/cam-67EF9CED`` for ``/mnt/cam`` and ``67EF9CED``."""
    return mount_base.with_name(f"{mount_base.name}-{device_id}")


class Mounter:
    """Mounts one camera at a time; ``mounted`` is where it is mounted now (None: nowhere)."""

    def __init__(
        self, runner: CommandRunner, tools: MountTools = MountTools(), timeout_s: float = 60.0
    ) -> None:
        self.runner = runner
        self.tools = tools
        self.timeout_s = timeout_s
        self.mounted: Path | None = None
        self.writable = False

    def mount_ro(self, device: Path, target: Path) -> None:
        """Mount ``device`` read-only at ``target``; CommandFailed when mount fails."""
        if not self.runner.dry_run:
            target.mkdir(parents=True, exist_ok=True)
        self.runner.run(
            [self.tools.mount, "-o", RO_OPTIONS, str(device), str(target)],
            timeout_s=self.timeout_s,
            check=True,
        )
        self.mounted, self.writable = target, False

    def remount_rw(self) -> None:
        """Make the mounted camera writable (only for deleting confirmed files)."""
        target = self._need_mounted()
        self.runner.run(
            [self.tools.mount, "-o", RW_OPTIONS, str(target)], timeout_s=self.timeout_s, check=True
        )
        self.writable = True

    def remount_ro(self) -> None:
        """Back to read-only after the deletions."""
        target = self._need_mounted()
        self.runner.run(
            [self.tools.mount, "-o", f"remount,{RO_OPTIONS}", str(target)],
            timeout_s=self.timeout_s,
            check=True,
        )
        self.writable = False

    def sync(self) -> bool:
        """Flush every write to its device; whether ``sync`` succeeded."""
        return self.runner.run([self.tools.sync], timeout_s=self.timeout_s).ok

    def umount(self) -> bool:
        """Unmount the camera (sync first); whether it is unmounted now."""
        if self.mounted is None:
            return True
        self.sync()
        done = self.runner.run([self.tools.umount, str(self.mounted)], timeout_s=self.timeout_s)
        if not done.ok:
            # Busy a moment (a reader still closing): once more after a sync.
            self.sync()
            done = self.runner.run([self.tools.umount, str(self.mounted)], timeout_s=self.timeout_s)
        if done.ok:
            self.mounted, self.writable = None, False
        else:
            log.error("could not unmount the camera: %s", done.describe())
        return done.ok

    @contextmanager
    def mounted_ro(self, device: Path, target: Path) -> Iterator[Path]:
        """Mounted read-only for the ``with`` block; synced and unmounted after, always."""
        self.mount_ro(device, target)
        try:
            yield target
        except BaseException:
            self.umount()  # logged when it fails; the first error is the one to tell
            raise
        if not self.umount():
            raise CommandFailed(self.runner.recent()[-1])

    def _need_mounted(self) -> Path:
        if self.mounted is None:
            raise RuntimeError("the camera is not mounted")
        return self.mounted
