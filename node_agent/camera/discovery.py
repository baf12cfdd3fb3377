"""V4L2 device discovery: which /dev/video* nodes are cameras FFmpeg can record from.

Only VIDIOC_QUERYCAP is asked (opening a node for it starts no stream), so the
survey and the status page can list cameras without taking one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

# <linux/videodev2.h>: _IOR('V', 0, struct v4l2_capability), a 104-byte struct.
VIDIOC_QUERYCAP = 0x80685600
_QUERYCAP = struct.Struct("16s32s32sIII12x")
CAP_VIDEO_CAPTURE = 0x00000001
CAP_VIDEO_CAPTURE_MPLANE = 0x00001000
CAP_VIDEO_M2M_MPLANE = 0x00004000
CAP_VIDEO_M2M = 0x00008000
CAP_META_CAPTURE = 0x00800000
CAP_STREAMING = 0x04000000
CAP_DEVICE_CAPS = 0x80000000

# Capture nodes a Pi has that are not cameras FFmpeg can record from: the CSI
# receivers hand raw Bayer to libcamera, and the ISP and codec nodes are parts of
# memory-to-memory pipelines.
_NOT_CAMERAS = {
    "unicam": "the CSI receiver (record it with camera.source: picamera2)",
    "rp1-cfe": "the CSI receiver (record it with camera.source: picamera2)",
    "bcm2835-isp": "the ISP, not a camera",
    "pispbe": "the ISP, not a camera",
    "bcm2835-codec": "a hardware codec, not a camera",
    "rpivid": "a hardware decoder, not a camera",
    "rpi-hevc-dec": "a hardware decoder, not a camera",
}


@dataclass(frozen=True)
class V4l2Caps:
    """What VIDIOC_QUERYCAP says about a device node."""

    driver: str
    card: str
    bus_info: str
    capabilities: int
    device_caps: int

    @property
    def caps(self) -> int:
        """The node's own capabilities (the device's, for old drivers)."""
        return self.device_caps if self.capabilities & CAP_DEVICE_CAPS else self.capabilities

    def unusable_reason(self) -> str | None:
        """Why FFmpeg's V4L2 input cannot record from this node, or None when it can."""
        if self.driver in _NOT_CAMERAS:
            return _NOT_CAMERAS[self.driver]
        caps = self.caps
        if caps & (CAP_VIDEO_M2M | CAP_VIDEO_M2M_MPLANE):
            return "a memory-to-memory device (codec or ISP), not a camera"
        if not caps & CAP_VIDEO_CAPTURE:
            if caps & CAP_META_CAPTURE:
                return "a metadata node (the camera's video is on a sibling node)"
            if caps & CAP_VIDEO_CAPTURE_MPLANE:
                return "a multi-planar capture node, which FFmpeg's V4L2 input cannot read"
            return "not a video capture node"
        if not caps & CAP_STREAMING:
            return "without streaming I/O, which FFmpeg's V4L2 input needs"
        return None


def parse_querycap(buf: bytes) -> V4l2Caps:
    """Decode a struct v4l2_capability."""
    fields = _QUERYCAP.unpack(buf[: _QUERYCAP.size])
    driver, card, bus_info, _version, capabilities, device_caps = fields

    def text(raw: bytes) -> str:
        return raw.split(b"\0", 1)[0].decode(errors="replace")

    return V4l2Caps(text(driver), text(card), text(bus_info), capabilities, device_caps)


def query_caps(path: Path) -> V4l2Caps:
    """VIDIOC_QUERYCAP on ``path``; opening a node for this starts no stream."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        buf = bytearray(_QUERYCAP.size)
        fcntl.ioctl(fd, VIDIOC_QUERYCAP, buf)
        return parse_querycap(bytes(buf))
    finally:
        os.close(fd)


def resolve_device(device: str, dev_dir: Path = Path("/dev")) -> Path:
    """camera.device as a path: ``0`` and ``video0`` are /dev/video0; paths stay as given."""
    name = device.strip()
    if name.isdigit():
        return dev_dir / f"video{int(name)}"
    if re.fullmatch(r"video\d+", name):
        return dev_dir / name
    return Path(name)


def describe_path(path: Path) -> str:
    """``path``, and where it leads when it is a symlink (``/dev/v4l/by-id/...``)."""
    real = Path(os.path.realpath(path))
    return f"{path} (-> {real})" if real != path else str(path)


def _by_id_links(dev_dir: Path) -> dict[Path, Path]:
    """/dev/v4l/by-id names for each real device node (stable across reboots and ports)."""
    links: dict[Path, Path] = {}
    by_id = dev_dir / "v4l" / "by-id"
    if by_id.is_dir():
        for link in sorted(by_id.iterdir()):
            links.setdefault(Path(os.path.realpath(link)), link)
    return links


@dataclass(frozen=True)
class V4l2Device:
    """A V4L2 node FFmpeg can record from."""

    path: Path
    card: str
    driver: str
    bus_info: str
    by_id: Path | None = None

    def describe(self) -> str:
        """E.g. '/dev/video0 (HD Pro Webcam C920, usb-0000:01:00.0-1.2)'."""
        where = describe_path(self.path)
        extra = f", {self.by_id}" if self.by_id and self.by_id != self.path else ""
        return f"{where} ({self.card}, {self.bus_info}{extra})"


def inspect_device(
    device: str, dev_dir: Path = Path("/dev")
) -> tuple[V4l2Device | None, str | None]:
    """The device camera.device names, or why it cannot be recorded from."""
    path = resolve_device(device, dev_dir)
    if not path.exists():
        return None, (
            f"{path} does not exist (is the camera plugged in? "
            "`v4l2-ctl --list-devices` lists the cameras)"
        )
    try:
        caps = query_caps(path)
    except PermissionError:
        return None, (
            f"{describe_path(path)}: permission denied (add the agent's user to the video group)"
        )
    except OSError as err:
        if err.errno in (errno.ENOTTY, errno.EINVAL):
            return None, f"{describe_path(path)} is not a V4L2 device"
        return None, f"{describe_path(path)} cannot be queried: {err.strerror or err}"
    reason = caps.unusable_reason()
    if reason is not None:
        return None, f"{describe_path(path)} is {reason}"
    by_id = _by_id_links(dev_dir).get(Path(os.path.realpath(path)))
    return V4l2Device(path, caps.card, caps.driver, caps.bus_info, by_id), None


def _node_number(path: Path) -> int:
    digits = path.name.removeprefix("video")
    return int(digits) if digits.isdigit() else 1 << 30


def find_capture_devices(dev_dir: Path = Path("/dev")) -> tuple[list[V4l2Device], str | None]:
    """The V4L2 nodes a camera can be recorded from, USB ones first; or why there are none."""
    nodes = sorted(
        (p for p in dev_dir.glob("video*") if re.fullmatch(r"video\d+", p.name)),
        key=_node_number,
    )
    if not nodes:
        return [], f"no {dev_dir}/video* devices"
    found: list[V4l2Device] = []
    problems: list[str] = []
    for node in nodes:
        device, problem = inspect_device(str(node), dev_dir)
        if device is not None:
            found.append(device)
        elif problem is not None:
            problems.append(problem)
    if not found:
        shown = "; ".join(problems[:3]) + ("; ..." if len(problems) > 3 else "")
        return [], f"no V4L2 capture device among {len(nodes)} {dev_dir}/video* nodes ({shown})"
    found.sort(key=lambda d: (not d.bus_info.startswith("usb"), _node_number(d.path)))
    return found, None
