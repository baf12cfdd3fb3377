"""Find the dashcam's block device in sysfs once it is in data mode.

The camera is matched by ``dashcam.camera.vendor_id``/``product_id`` (``idVendor`` and
``idProduct`` of a device in ``/sys/bus/usb/devices``) when they are set, else by its hub
path (the device on ``port_number`` of ``hub_location``: ``1-1`` port 1 is ``1-1.1``). Its
block device is an entry of ``/sys/class/block`` whose resolved path lies under that USB
device's resolved path (the kernel links ``sda`` to
``.../usb1/1-1/1-1.1/1-1.1:1.0/host0/.../block/sda``); a partition (``sda1``) is preferred
over the whole disk, which a camera's card rarely is formatted as.

The finding is pure over the two sysfs folders, so tests build a fake tree with the same
symlinks; ``wait_for_camera`` adds ``udevadm settle`` and polling until the time-out.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from node_agent.commands import CommandRunner
from node_agent.dashcam.settings import CameraUsbSettings
from node_agent.power.usb import port_device

log = logging.getLogger(__name__)

POLL_S = 0.5


class CameraNotFound(RuntimeError):
    """The camera's block device did not appear in time; the message says what was seen."""


@dataclass(frozen=True)
class UsbDevice:
    """One USB device as sysfs shows it."""

    name: str  # "1-1.1"
    path: Path  # resolved: /sys/devices/.../1-1/1-1.1
    vendor_id: str | None
    product_id: str | None
    serial: str | None


@dataclass(frozen=True)
class FoundCamera:
    """The camera's block device and the names it goes by."""

    node: Path  # /dev/sda1
    block: str  # sda1
    device_id: str  # safe: serial, else VID-PID
    usb: UsbDevice

    @property
    def description(self) -> str:
        """``1-1.1 0bda:0129 /dev/sda1``: how it was found (the manifest's ``device``)."""
        ids = f" {self.usb.vendor_id}:{self.usb.product_id}" if self.usb.vendor_id else ""
        return f"{self.usb.name}{ids} {self.node}"


def _attr(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip() or None
    except OSError:
        return None


def usb_devices(sysfs_usb: Path) -> list[UsbDevice]:
    """Every USB device (not interface: no ``:`` in the name) with an ``idVendor``."""
    found: list[UsbDevice] = []
    try:
        entries = sorted(sysfs_usb.iterdir())
    except OSError:
        return found
    for entry in entries:
        if ":" in entry.name:
            continue  # an interface (1-1.1:1.0), not a device
        vendor = _attr(entry / "idVendor")
        if vendor is None:
            continue
        found.append(
            UsbDevice(
                entry.name,
                entry.resolve(),
                vendor.lower(),
                (_attr(entry / "idProduct") or "").lower() or None,
                _attr(entry / "serial"),
            )
        )
    return found


def match_camera(devices: list[UsbDevice], camera: CameraUsbSettings) -> UsbDevice | None:
    """The camera among ``devices``: by VID:PID when set, else by hub path."""
    if camera.vendor_id:
        vid, pid = camera.vendor_id.lower(), (camera.product_id or "").lower()
        for d in devices:
            if d.vendor_id == vid and (not pid or d.product_id == pid):
                return d
        return None
    name = port_device(camera.hub_location, camera.port_number)
    return next((d for d in devices if d.name == name), None)


def block_under(usb: UsbDevice, sysfs_block: Path) -> str | None:
    """The block device under ``usb``: its first partition, else its first disk with media."""
    partitions: list[str] = []
    disks: list[str] = []
    try:
        entries = sorted(sysfs_block.iterdir())
    except OSError:
        return None
    for entry in entries:
        try:
            resolved = entry.resolve()
        except OSError:
            continue
        if not resolved.is_relative_to(usb.path):
            continue
        if _attr(entry / "size") == "0":
            continue  # a card reader's empty slot
        (partitions if (entry / "partition").exists() else disks).append(entry.name)
    choice = partitions or disks
    return choice[0] if choice else None


def safe_device_id(usb: UsbDevice) -> str:
    """A name safe in a path and on the NAS: the serial, else VID-PID, else the hub path."""
    for raw in (usb.serial, f"{usb.vendor_id}-{usb.product_id}" if usb.vendor_id else None):
        if raw:
            safe = re.sub(r"[^A-Za-z0-9_-]", "_", raw).strip("_-")[:64]
            if safe:
                return safe
    return "usb-" + re.sub(r"[^A-Za-z0-9_-]", "_", usb.name)[:60]


def find_camera(camera: CameraUsbSettings) -> FoundCamera | None:
    """The camera's block device now, or None."""
    usb = match_camera(usb_devices(camera.sysfs_usb), camera)
    if usb is None:
        return None
    block = block_under(usb, camera.sysfs_block)
    if block is None:
        return None
    return FoundCamera(camera.dev_dir / block, block, safe_device_id(usb), usb)


def describe_target(camera: CameraUsbSettings) -> str:
    """What is looked for, in words (for messages)."""
    if camera.vendor_id:
        return f"USB {camera.vendor_id}:{camera.product_id or '*'} in {camera.sysfs_usb}"
    name = port_device(camera.hub_location, camera.port_number)
    return f"USB device {name} (hub {camera.hub_location} port {camera.port_number})"


def wait_for_camera(
    camera: CameraUsbSettings,
    runner: CommandRunner,
    timeout_s: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    abort: Callable[[], bool] = lambda: False,
    udevadm: str = "udevadm",
) -> FoundCamera:
    """Wait (``udevadm settle``, then polling) up to ``timeout_s`` for the camera's block
    device; ``CameraNotFound`` after that, or at once when ``abort()`` says so."""
    deadline = monotonic() + timeout_s
    settle = max(1, int(min(timeout_s, 10)))
    runner.run([udevadm, "settle", f"--timeout={settle}"], timeout_s=settle + 5, mutates=False)
    while True:
        found = find_camera(camera)
        if found is not None and found.node.exists():
            log.info("camera found: %s", found.description)
            return found
        if abort():
            raise CameraNotFound("stopped while waiting for the camera")
        if monotonic() >= deadline:
            usb = match_camera(usb_devices(camera.sysfs_usb), camera)
            seen = (
                f"{usb.name} is there but has no block device under {camera.sysfs_block}"
                if usb
                else "no such device"
            )
            raise CameraNotFound(
                f"{describe_target(camera)} gave no block device in {timeout_s:g} s "
                f"({seen}); is the camera in data mode (poll.mount_timeout_seconds)?"
            )
        sleep(POLL_S)
