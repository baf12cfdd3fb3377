"""Stand-ins for the dashcam's tests: a fake sysfs tree shaped like the kernel's, a folder
(or a real loop-mounted ext2 image) as the camera's card, fake mount/umount/sync/uhubctl/
udevadm through FakeBin, and an in-test uploader that does to the ledger what the real
one does after the NAS's checksum matched.

The kernel here has no vfat, so the "real card" is an ext2 image (``mkfs.ext2 -d``) on a
loop device; a dashcam's FAT card mounts the same way with the same options.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import machine_lock
from node_agent.commands import CommandRunner
from node_agent.dashcam.ingest import Ingestor
from node_agent.dashcam.ledger import Ledger
from node_agent.dashcam.mount import Mounter, MountTools
from node_agent.dashcam.schemas import IngestManifest
from node_agent.dashcam.service import Dashcam
from node_agent.dashcam.settings import DashcamSettings
from node_agent.power.policy import Decision
from node_agent.power.schemas import PowerLevel
from node_agent.power.usb import make_usb
from tests.fakebin import FakeBin

USB_ROOT = "devices/platform/soc/fe980000.usb/usb1"
MAINS = Decision(PowerLevel.mains, "no battery provider: mains power assumed")
DISCONNECT = Decision(PowerLevel.disconnect, "battery at 40.0 %, under 50 %: camera off")
AC_LOW = Decision(PowerLevel.ac, "on AC power (battery 10 %): battery thresholds ignored")


@dataclass
class FakeSysfs:
    """``{root}/sys`` and ``{root}/dev`` with one USB camera, as the kernel links them."""

    root: Path

    @property
    def usb(self) -> Path:
        return self.root / "sys/bus/usb/devices"

    @property
    def block(self) -> Path:
        return self.root / "sys/class/block"

    @property
    def dev(self) -> Path:
        return self.root / "dev"

    def _link(self, link: Path, target: Path) -> None:
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(target, link.parent))

    def add_usb(
        self,
        name: str = "1-1.1",
        vendor: str = "0BDA",
        product: str = "0129",
        serial: str | None = "67EF9CED",
    ) -> Path:
        """A USB device (with the hub 1-1 above it and its interface :1.0)."""
        hub = self.root / "sys" / USB_ROOT / "1-1"
        if not (hub / "idVendor").exists():
            hub.mkdir(parents=True, exist_ok=True)
            (hub / "idVendor").write_text("1d6b\n")
            (hub / "idProduct").write_text("0002\n")
            self._link(self.usb / "1-1", hub)
        dev = hub / name
        dev.mkdir(parents=True, exist_ok=True)
        (dev / "idVendor").write_text(vendor + "\n")
        (dev / "idProduct").write_text(product + "\n")
        (dev / "authorized").write_text("1\n")
        if serial is not None:
            (dev / "serial").write_text(serial + "\n")
        iface = dev / f"{name}:1.0"
        iface.mkdir(exist_ok=True)
        self._link(self.usb / name, dev)
        self._link(self.usb / f"{name}:1.0", iface)
        return dev

    def add_block(
        self,
        usb_name: str = "1-1.1",
        disk: str = "sda",
        partitions: tuple[str, ...] = ("sda1",),
        node_target: Path | str | None = None,
        size: str = "62333952",
    ) -> None:
        """The disk (and partitions) under the USB device's SCSI host, their class links
        and device nodes: ``node_target`` is what ``/dev/<part>`` stands for (a real
        ``/dev/loopN`` to symlink to, or text written into a plain file)."""
        dev = (self.usb / usb_name).resolve()
        base = dev / f"{usb_name}:1.0/host0/target0:0:0/0:0:0:0/block" / disk
        base.mkdir(parents=True, exist_ok=True)
        (base / "size").write_text(size + "\n")
        self._link(self.block / disk, base)
        nodes = [disk]
        for part in partitions:
            (base / part).mkdir(exist_ok=True)
            (base / part / "partition").write_text("1\n")
            (base / part / "size").write_text(size + "\n")
            self._link(self.block / part, base / part)
            nodes.append(part)
        self.dev.mkdir(parents=True, exist_ok=True)
        for node in nodes:
            path = self.dev / node
            if isinstance(node_target, Path) and str(node_target).startswith("/dev/"):
                path.symlink_to(node_target)
            else:
                path.write_text(str(node_target or ""))

    def add_other_disk(self) -> None:
        """The Pi's own SD card: a block device under no USB device."""
        mmc = self.root / "sys/devices/platform/emmc2bus/mmc0/block/mmcblk0"
        (mmc / "mmcblk0p1").mkdir(parents=True)
        (mmc / "mmcblk0p1" / "partition").write_text("1\n")
        self._link(self.block / "mmcblk0", mmc)
        self._link(self.block / "mmcblk0p1", mmc / "mmcblk0p1")


def fake_mount_tools(fb: FakeBin) -> MountTools:
    """mount/umount/sync that stand a folder in for the card: the fake device node holds
    the folder's path, ``mount`` puts a symlink to it at the mount point, ``umount`` takes
    it away again. Every call is recorded."""
    mount = fb.add(
        "mount",
        script='case "$2" in remount*) exit 0;; esac\nrmdir "$4" && ln -s "$(cat "$3")" "$4"',
    )
    umount = fb.add("umount", script='rm "$1" && mkdir "$1"')
    sync = fb.add("sync")
    return MountTools(str(mount), str(umount), str(sync))


def write_footage(card: Path, files: dict[str, bytes], mtime: float = 1_700_000_000) -> None:
    """Files on the card (paths relative to it), each with a fixed time."""
    for rel, data in files.items():
        path = card / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (mtime, mtime))


@dataclass
class StandInUploader:
    """What the real uploader does to the ledger once the NAS's SHA-256 matched: the
    manifest marked offloaded, the staged copy deleted. ``reachable`` is set by the test."""

    ledger: Ledger
    is_reachable: bool = True
    confirm: bool = True
    calls: int = 0
    reachable_calls: int = 0
    uploaded: list[str] = field(default_factory=list)

    def reachable(self) -> bool:
        self.reachable_calls += 1
        return self.is_reachable

    async def upload_pending(self) -> list[IngestManifest]:
        self.calls += 1
        done: list[IngestManifest] = []
        for m in self.ledger.pending_upload():
            if not self.confirm:
                self.ledger.write(m.model_copy(update={"upload_attempts": m.upload_attempts + 1}))
                continue
            self.ledger.staged_file(m).unlink()
            now = time.time_ns()
            m = m.model_copy(
                update={
                    "offloaded": True,
                    "offloaded_at_ns": now,
                    "offloaded_to": f"rsync:nas:22/data/dashcam/{m.staged_path}",
                    "staging_deleted_at_ns": now,
                    "upload_attempts": m.upload_attempts + 1,
                }
            )
            self.ledger.write(m)
            self.uploaded.append(m.staged_path)
            done.append(m)
        return done


@dataclass
class Rig:
    """A Dashcam over stand-ins, and the things a test looks at."""

    dashcam: Dashcam
    fakebin: FakeBin
    sysfs: FakeSysfs
    uploader: StandInUploader
    ledger: Ledger
    settings: DashcamSettings
    power: list[Decision]

    def uhubctl(self) -> list[list[str]]:
        return [a[1:] for a in self.fakebin.argvs("uhubctl")]

    def authorized(self, name: str = "1-1.1") -> str:
        return (self.sysfs.usb / name / "authorized").read_text().strip()


def make_rig(
    tmp_path: Path,
    *,
    dry_run: bool = False,
    tools: MountTools | None = None,
    power: Decision = MAINS,
    reachable: bool = True,
    camera: dict[str, object] | None = None,
    on_copied: Callable[[IngestManifest], None] | None = None,
) -> Rig:
    """A Dashcam whose every program is a fake (unless ``tools`` gives real mount tools)."""
    fb = FakeBin(tmp_path)
    uhubctl = fb.add("uhubctl")
    udevadm = fb.add("udevadm")
    sysfs = FakeSysfs(tmp_path / "root")
    sysfs.add_usb()
    settings = DashcamSettings.model_validate(
        {
            "enabled": True,
            "camera": {
                "uhubctl": str(uhubctl),
                "sysfs_usb": str(sysfs.usb),
                "sysfs_block": str(sysfs.block),
                "dev_dir": str(sysfs.dev),
                "mount_base": str(tmp_path / "mnt" / "cam"),
                **(camera or {}),
            },
            "paths": {"local_staging": str(tmp_path / "staging")},
            "poll": {"mount_timeout_seconds": 0.5},
        }
    )
    runner = CommandRunner(dry_run=dry_run)
    ledger = Ledger(settings.paths.local_staging)
    ingestor = Ingestor(
        ledger,
        "dash-1",
        "CAM_C",
        "test",
        settings.camera.file_extensions,
        on_copied=on_copied,
    )
    uploader = StandInUploader(ledger, is_reachable=reachable)
    decisions = [power]
    dashcam = Dashcam(
        settings,
        make_usb(settings.camera, runner),
        runner,
        lambda: decisions[-1],
        uploader,
        ingestor,
        Mounter(runner, tools or fake_mount_tools(fb)),
        udevadm=str(udevadm),
        sleep=lambda _s: time.sleep(0.01),
    )
    return Rig(dashcam, fb, sysfs, uploader, ledger, settings, decisions)


@contextmanager
def loop_card(tmp_path: Path, files: dict[str, bytes], size_mb: int = 16) -> Iterator[Path]:
    """A real ext2 image holding ``files``, attached to a free loop device (yielded)."""
    content = tmp_path / "card-content"
    write_footage(content, files)
    image = tmp_path / "card.img"
    with image.open("wb") as fh:
        fh.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext2", "-q", "-F", "-d", str(content), str(image)], check=True)
    with machine_lock("loop-devices"):  # one test at a time attaches, mounts and detaches
        loop = subprocess.run(
            ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
        ).stdout.strip()
        try:
            yield Path(loop)
        finally:
            for line in Path("/proc/mounts").read_text().splitlines():
                dev, target = line.split()[:2]
                if dev == loop:
                    subprocess.run(["umount", target], check=False)
            subprocess.run(["losetup", "-d", loop], check=False)


def mounted_targets(loop: Path) -> list[str]:
    """Where the loop device is mounted now."""
    return [
        line.split()[1]
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.split()[0] == str(loop)
    ]
