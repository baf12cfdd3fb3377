"""What cameras this node has, found without opening one: what ``camera.source: auto`` acts on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from node_agent.camera.discovery import V4l2Device, find_capture_devices, inspect_device


@dataclass(frozen=True)
class CameraSurvey:
    """What this node has, found without opening a camera: what ``auto`` acts on."""

    csi_cameras: list[str] = field(default_factory=list)
    picamera2_problem: str | None = None
    v4l2_devices: list[V4l2Device] = field(default_factory=list)
    v4l2_problem: str | None = None
    device: str | None = None

    @property
    def choice(self) -> str | None:
        """'v4l2' when camera.device is set, else 'picamera2' before 'v4l2'; None if neither."""
        if self.device is not None:
            return "v4l2"
        if self.csi_cameras:
            return "picamera2"
        if self.v4l2_devices:
            return "v4l2"
        return None

    def findings(self) -> str:
        """What was tried and found, e.g. 'picamera2 is not installed; no /dev/video* devices'."""
        csi = (
            f"picamera2: {', '.join(self.csi_cameras)}"
            if self.csi_cameras
            else (self.picamera2_problem or "picamera2: no camera")
        )
        if self.v4l2_devices:
            usb = "V4L2: " + ", ".join(d.describe() for d in self.v4l2_devices)
        else:
            usb = self.v4l2_problem or "V4L2: no capture device"
        return f"{csi}; {usb}"

    def summary(self) -> str:
        """One line for the status page: what ``auto`` picks, or why there is nothing."""
        choice = self.choice
        if choice == "v4l2" and self.device is not None:
            if self.v4l2_problem:
                return f"camera.device {self.device}: {self.v4l2_problem}"
            return f"V4L2 {self.v4l2_devices[0].describe()} (camera.device)"
        if choice == "picamera2":
            return f"picamera2 {self.csi_cameras[0]}"
        if choice == "v4l2":
            return f"V4L2 {self.v4l2_devices[0].describe()}"
        return f"no camera found: {self.findings()}"


def probe_picamera2() -> tuple[list[str], str | None]:
    """CSI cameras libcamera lists (USB ones are left to V4L2), or why there are none.

    Importing picamera2 and listing cameras starts libcamera's camera manager but
    opens no camera.
    """
    try:
        from picamera2 import Picamera2
    except ModuleNotFoundError as err:
        if err.name == "picamera2":
            return [], (
                "picamera2 is not installed (apt install python3-picamera2; the venv "
                "needs --system-site-packages)"
            )
        return [], f"picamera2 cannot be imported: {err}"
    except Exception as err:  # libcamera's bindings raise whatever they raise
        return [], f"picamera2 cannot be imported: {err}"
    try:
        infos = Picamera2.global_camera_info()
    except Exception as err:
        return [], f"libcamera could not list cameras: {err}"
    csi = [info for info in infos if "/usb" not in str(info.get("Id", ""))]
    if not csi:
        extra = f" ({len(infos)} USB camera(s) left to V4L2)" if infos else ""
        return [], f"libcamera sees no CSI camera{extra}"
    return [f"{info.get('Model', '?')} ({info.get('Id', '?')})" for info in csi], None


def survey_cameras(device: str | None = None, dev_dir: Path = Path("/dev")) -> CameraSurvey:
    """Probe picamera2 and the V4L2 devices (or just ``device`` when it is set)."""
    if device is not None:
        found, problem = inspect_device(device, dev_dir)
        return CameraSurvey(
            v4l2_devices=[found] if found else [], v4l2_problem=problem, device=device
        )
    csi, csi_problem = probe_picamera2()
    devices, v4l2_problem = find_capture_devices(dev_dir)
    return CameraSurvey(csi, csi_problem, devices, v4l2_problem)


def describe_cameras(
    source: str = "auto", device: str | None = None, dev_dir: Path = Path("/dev")
) -> str:
    """What camera.source would record from, for the status page; opens no camera."""
    if source == "synthetic":
        return "synthetic test pattern (camera.source: synthetic)"
    if source == "picamera2":
        csi, problem = probe_picamera2()
        return f"picamera2 {csi[0]}" if csi else f"picamera2: {problem}"
    if source == "v4l2":
        if device is None:
            devices, problem = find_capture_devices(dev_dir)
            return f"V4L2 {devices[0].describe()}" if devices else str(problem)
        return survey_cameras(device, dev_dir).summary()
    if source == "auto":
        return "auto: " + survey_cameras(device, dev_dir).summary()
    return f"unknown camera source {source!r}"
