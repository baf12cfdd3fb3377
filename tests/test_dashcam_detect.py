"""Finding the dashcam's block device in a fake sysfs tree linked like the kernel's."""

from __future__ import annotations

from pathlib import Path

import pytest

from node_agent.commands import CommandRunner
from node_agent.dashcam.detect import (
    CameraNotFound,
    find_camera,
    safe_device_id,
    usb_devices,
    wait_for_camera,
)
from node_agent.dashcam.settings import CameraUsbSettings
from tests.dashcam_standin import FakeSysfs
from tests.fakebin import FakeBin


def camera(sysfs: FakeSysfs, **kw: object) -> CameraUsbSettings:
    return CameraUsbSettings.model_validate(
        {
            "sysfs_usb": str(sysfs.usb),
            "sysfs_block": str(sysfs.block),
            "dev_dir": str(sysfs.dev),
            **kw,
        }
    )


def test_devices_skip_interfaces_and_read_ids(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path)
    sysfs.add_usb()
    names = {d.name: d for d in usb_devices(sysfs.usb)}
    assert set(names) == {"1-1", "1-1.1"}  # the interface 1-1.1:1.0 is not a device
    cam = names["1-1.1"]
    assert (cam.vendor_id, cam.product_id, cam.serial) == ("0bda", "0129", "67EF9CED")
    assert cam.path == (sysfs.usb / "1-1.1").resolve()


def test_found_by_hub_path_prefers_the_partition(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path)
    sysfs.add_usb()
    sysfs.add_other_disk()  # the Pi's own card is never taken
    sysfs.add_block(partitions=("sda1",))
    found = find_camera(camera(sysfs, hub_location="1-1", port_number=1))
    assert found is not None
    assert (found.block, found.node, found.device_id) == ("sda1", sysfs.dev / "sda1", "67EF9CED")
    assert found.description == f"1-1.1 0bda:0129 {sysfs.dev / 'sda1'}"


def test_a_card_without_partitions_is_the_disk(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path)
    sysfs.add_usb()
    sysfs.add_block(partitions=())
    found = find_camera(camera(sysfs))
    assert found is not None and found.block == "sda"


def test_another_port_or_an_empty_slot_is_not_the_camera(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path)
    sysfs.add_usb("1-1.2")
    sysfs.add_block("1-1.2")
    assert find_camera(camera(sysfs, port_number=1)) is None
    assert find_camera(camera(sysfs, port_number=2)) is not None
    other = FakeSysfs(tmp_path / "other")
    other.add_usb()
    other.add_block(partitions=(), size="0")  # a card reader with no card
    assert find_camera(camera(other)) is None


def test_found_by_vendor_and_product_on_any_port(tmp_path: Path) -> None:
    sysfs = FakeSysfs(tmp_path)
    sysfs.add_usb("1-1.3", vendor="2b7e", product="b555", serial=None)
    sysfs.add_block("1-1.3", disk="sdb", partitions=("sdb1",))
    found = find_camera(camera(sysfs, vendor_id="2B7E", product_id="B555", port_number=1))
    assert found is not None
    assert (found.block, found.device_id) == ("sdb1", "2b7e-b555")  # no serial: VID-PID
    assert find_camera(camera(sysfs, vendor_id="2b7e", product_id="0001")) is None


@pytest.mark.parametrize(
    ("serial", "expected"),
    [("67EF9CED", "67EF9CED"), ("../../etc", "etc"), ("A B/C", "A_B_C"), ("...", "0bda-0129")],
)
def test_device_id_is_safe_in_a_path(tmp_path: Path, serial: str, expected: str) -> None:
    sysfs = FakeSysfs(tmp_path)
    sysfs.add_usb(serial=serial)
    dev = next(d for d in usb_devices(sysfs.usb) if d.name == "1-1.1")
    assert safe_device_id(dev) == expected


def test_wait_settles_udev_then_polls_until_the_device_appears(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    udevadm = fb.add("udevadm")
    sysfs = FakeSysfs(tmp_path / "root")
    sysfs.add_usb()
    polls: list[float] = []

    def sleep(s: float) -> None:
        polls.append(s)
        if len(polls) == 3:
            sysfs.add_block()  # the kernel finishes enumerating the card

    found = wait_for_camera(camera(sysfs), CommandRunner(), 20, sleep=sleep, udevadm=str(udevadm))
    assert found.block == "sda1" and len(polls) == 3
    assert fb.argvs("udevadm") == [["udevadm", "settle", "--timeout=10"]]


def test_wait_times_out_with_what_it_saw(tmp_path: Path) -> None:
    fb = FakeBin(tmp_path)
    udevadm = fb.add("udevadm")
    sysfs = FakeSysfs(tmp_path / "root")
    sysfs.add_usb()
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    with pytest.raises(CameraNotFound, match=r"1-1\.1 is there but has no block device"):
        wait_for_camera(
            camera(sysfs),
            CommandRunner(),
            5,
            sleep=sleep,
            monotonic=lambda: clock[0],
            udevadm=str(udevadm),
        )
    assert clock[0] == pytest.approx(5.0)
