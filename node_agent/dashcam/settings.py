"""Dashcam settings (``dashcam:`` in the agent's YAML, ``CAMFLEET_DASHCAM__*`` in the env).

The sections and their example values come from the dashcam seed's ``config.yaml``
(``upload``, ``camera``, ``paths``, ``poll``); its ``thresholds`` are ``power.*`` here,
since they apply to every node on a battery.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

HUB_LOCATION = r"^[0-9]+(-[0-9]+(\.[0-9]+)*)?$"  # uhubctl's -l: "1-1", "1-1.2", "2"
USB_ID = r"^[0-9a-fA-F]{4}$"


class UploadSettings(BaseModel):
    """Where staged footage goes: rsync over ssh to a NAS."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["rsync"] = "rsync"
    host: str = Field(default="192.168.1.203", pattern=r"^[A-Za-z0-9.:_-]{1,253}$")
    user: str = Field(default="camera_uploader", pattern=r"^[a-z_][a-z0-9_.-]{0,31}$")
    port: int = Field(default=22, ge=1, le=65535)
    dest_path: str = Field(
        default="/data/dashcam",
        pattern=r"^/[A-Za-z0-9._/-]{0,1023}$",
        description="The folder on the NAS (absolute, no spaces or shell characters).",
    )
    ssh_key: Path = Field(
        default=Path("/etc/camera_service/id_rsa"),
        description="The private key; refused at start unless its mode is 0600 (or 0400).",
    )
    known_hosts: Path | None = Field(
        default=None,
        description="The NAS's host key; None: trust on first use, kept in the agent's "
        "data folder, and refused if it ever changes.",
    )
    remote_hasher: Literal["sha256sum", "openssl"] = Field(
        default="sha256sum",
        description="How the NAS hashes its copy: sha256sum (coreutils or BusyBox: on every "
        "NAS), or `openssl dgst -sha256`, several times faster where OpenSSL uses the CPU's "
        "SHA instructions (see docs/benchmarks.md, section 10).",
    )
    rsync_flags: list[str] = Field(
        default_factory=lambda: ["--archive", "--partial", "--inplace"],
        description="The seed's flags. --remove-source-files is refused: a staged file is "
        "removed only after the NAS's SHA-256 matches.",
    )
    connect_timeout_s: float = Field(default=10.0, gt=0, le=300)
    backoff_base_s: float = Field(default=2.0, ge=0, le=600)
    backoff_max_s: float = Field(default=60.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _no_early_removal(self) -> UploadSettings:
        if any(f.startswith("--remove-source") for f in self.rsync_flags):
            raise ValueError(
                "dashcam.upload.rsync_flags must not remove source files: a staged file is "
                "deleted only after the NAS's SHA-256 matches it"
            )
        return self


class CameraUsbSettings(BaseModel):
    """The USB dashcam: which hub port powers it and how to switch it."""

    model_config = ConfigDict(extra="forbid")

    hub_location: str = Field(default="1-1", pattern=HUB_LOCATION)
    port_number: int = Field(default=1, ge=1, le=255)
    vendor_id: str | None = Field(default=None, pattern=USB_ID, description="idVendor, hex.")
    product_id: str | None = Field(default=None, pattern=USB_ID, description="idProduct, hex.")
    mount_base: Path = Path("/mnt/cam")
    control: Literal["uhubctl", "scripts"] = Field(
        default="uhubctl",
        description="uhubctl (hub_location and port_number), or the seed's control scripts.",
    )
    uhubctl: str = "uhubctl"
    start_for_data: list[str] | None = Field(
        default=None, min_length=1, description="control 'scripts': start-for-data.sh"
    )
    start_for_recording: list[str] | None = Field(
        default=None, min_length=1, description="control 'scripts': start-for-recording.sh"
    )
    stop_all_ports: list[str] | None = Field(
        default=None, min_length=1, description="control 'scripts': stop-all-ports.sh"
    )
    sysfs_usb: Path = Field(
        default=Path("/sys/bus/usb/devices"), description="Where USB devices are found."
    )
    sysfs_block: Path = Field(
        default=Path("/sys/class/block"), description="Where block devices are found."
    )
    dev_dir: Path = Field(default=Path("/dev"), description="Where device nodes are.")
    after_copy: Literal["recording", "off"] = Field(
        default="recording", description="What the camera goes back to after a copy."
    )
    safe_state: Literal["recording", "off"] = Field(
        default="recording", description="What the camera is left in on SIGINT/SIGTERM."
    )
    file_extensions: list[str] = Field(
        default_factory=lambda: [".mp4", ".mov", ".avi", ".ts", ".jpg"],
        description="Files on the camera that are footage (case-insensitive).",
    )
    delete_from_camera: bool = Field(
        default=True,
        description="Delete the camera's own copy once the NAS's copy is confirmed (the "
        "camera's copy is hashed again first).",
    )

    @model_validator(mode="after")
    def _scripts_when_scripts(self) -> CameraUsbSettings:
        if self.control == "scripts":
            missing = [
                name
                for name in ("start_for_data", "start_for_recording", "stop_all_ports")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(
                    "dashcam.camera.control is 'scripts' but "
                    + ", ".join(f"dashcam.camera.{m}" for m in missing)
                    + " not set: give each script as a list, e.g. "
                    "['/home/pi/camera-scripts/start-for-data.sh']"
                )
        return self


class PathSettings(BaseModel):
    """Where the dashcam keeps footage between the camera and the NAS."""

    model_config = ConfigDict(extra="forbid")

    local_staging: Path = Path("/var/lib/camera_service/staging")
    log_path: Path | None = Field(
        default=None,
        description="A log file besides the journal (rotated by /etc/logrotate.d/camfleet).",
    )


class PollSettings(BaseModel):
    """How often the loop looks, and how long it waits."""

    model_config = ConfigDict(extra="forbid")

    interval_seconds: float = Field(default=30.0, gt=0, le=86400)
    mount_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    upload_retries: int = Field(default=3, ge=0, le=100)


class DashcamSettings(BaseModel):
    """The dashcam mode: ingest from a USB camera, upload to a NAS, confirmed by checksum."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    dry_run: bool = Field(
        default=False, description="Log every command it would run; run none, change nothing."
    )
    upload: UploadSettings = UploadSettings()
    camera: CameraUsbSettings = CameraUsbSettings()
    paths: PathSettings = PathSettings()
    poll: PollSettings = PollSettings()
