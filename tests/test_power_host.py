"""The machine adapter's pure part: which mount holds the recordings, and which mounts are
never unmounted; and the reader against this machine's real mountinfo."""

from __future__ import annotations

from pathlib import Path

from node_agent.power.host import Mount, mount_of, parse_mountinfo, read_mounts, unmountable

MOUNTINFO = """\
22 1 259:2 / / rw,noatime shared:1 - ext4 /dev/root rw
23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
25 22 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=1895688k
30 22 259:1 / /boot/firmware rw,relatime shared:6 - vfat /dev/mmcblk0p1 rw,fmask=0022
41 22 0:34 / /run/user/1000 rw,nosuid,nodev - tmpfs tmpfs rw,size=379540k,mode=700
98 22 8:1 / /mnt/nvme rw,relatime shared:40 - ext4 /dev/nvme0n1p1 rw
99 98 8:17 / /mnt/nvme/usb\\040disk rw,relatime shared:41 master:3 - ext2 /dev/sdb1 rw
100 22 7:0 / /media/cam rw - ext2 /dev/loop0 rw
101 22 7:1 / /media/cam rw - ext2 /dev/loop1 rw
this line is not mountinfo
"""


def test_parse_mountinfo_reads_fields_and_escapes() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert len(mounts) == 9  # the odd line is skipped
    assert mounts[0] == Mount("/", "/dev/root", "ext4")
    assert mounts[6] == Mount("/mnt/nvme/usb disk", "/dev/sdb1", "ext2")  # optional fields


def test_the_deepest_mount_holds_a_path() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert mount_of("/mnt/nvme/recordings", mounts) == mounts[5]
    assert mount_of("/mnt/nvme/usb disk/rec", mounts) == mounts[6]
    assert mount_of("/mnt/nvme", mounts) == mounts[5]
    assert mount_of("/mnt/nvmeX/rec", mounts) == mounts[0]  # a prefix of the name is not a parent
    assert mount_of("/media/cam/rec", mounts) == mounts[8]  # the last of two on one point


def test_root_system_and_memory_mounts_are_never_unmounted() -> None:
    mounts = parse_mountinfo(MOUNTINFO)
    assert "system mount" in (unmountable(mount_of("/var/lib/camfleet", mounts)) or "")
    assert "system mount" in (unmountable(mount_of("/boot/firmware/x", mounts)) or "")
    assert "tmpfs" in (unmountable(mount_of("/run/user/1000/rec", mounts)) or "")
    assert unmountable(None) == "no mount holds it"
    assert unmountable(mount_of("/mnt/nvme/recordings", mounts)) is None


def test_this_machine_s_mountinfo_reads(tmp_path: Path) -> None:
    mounts = read_mounts()
    assert any(m.mount_point == "/" for m in mounts)
    assert read_mounts(tmp_path / "missing") == []
