"""The dashcam on the wire and on disk: one manifest per ingested file, and the status.

``node_agent.schemas`` (``NodeStatus.dashcam``) imports this module, so it imports
nothing from the agent. Times are UTC nanoseconds since the epoch (``*_ns``).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

# One staged file's path under the staging folder: our own alphabet, '/' between parts,
# no part starting with a dot (nothing hidden, no '..'), so it is safe on the NAS's shell.
STAGED_PATH = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}){0,15}$"
DEVICE_ID = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"


class IngestManifest(BaseModel):
    """The JSON kept for each file copied off the camera (``.manifests/{staged}.json`` in
    the staging folder), written temp + fsync + rename at each step.

    It is also the ledger: a file on the camera whose device, path, size and time match a
    manifest is not copied again. It outlives the staged copy and the camera's copy.
    """

    model_config = ConfigDict(extra="ignore")

    node_id: str
    cam_id: str
    device_id: str = Field(pattern=DEVICE_ID, description="The camera: serial, or VID-PID.")
    device: str = Field(max_length=256, description="How it was found: hub path, VID:PID.")
    source_path: str = Field(
        max_length=1024, description="The file's path on the camera, as the camera names it."
    )
    source_size_bytes: int = Field(ge=0)
    source_mtime_ns: int
    staged_path: str = Field(pattern=STAGED_PATH, description="Under the staging folder.")
    size_bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    ingested_at_ns: int
    software_version: str
    upload_attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    offloaded: bool = Field(default=False, description="The NAS's own SHA-256 of its copy matched.")
    offloaded_at_ns: int | None = None
    offloaded_to: str | None = Field(
        default=None, max_length=1024, description="e.g. rsync:user@host:22/data/dashcam/..."
    )
    staging_deleted_at_ns: int | None = None
    camera_deleted_at_ns: int | None = None


class DashcamState(StrEnum):
    """What the dashcam loop is doing now."""

    disabled = "disabled"
    idle = "idle"  # waiting for the next poll
    recording = "recording"  # camera powered, data off: the dashcam records
    camera_off = "camera_off"  # battery under power.disconnect_percent
    copying = "copying"  # data mode, mounted read-only, copying into staging
    uploading = "uploading"
    stopping = "stopping"


class DashcamStatus(BaseModel):
    """The dashcam mode, as its loop sees it."""

    model_config = ConfigDict(extra="ignore")

    state: DashcamState
    dry_run: bool = False
    host_reachable: bool | None = None
    last_cycle_at_ns: int | None = None
    last_cycle_result: str | None = Field(default=None, description="A sentence.")
    staged_files: int = 0
    staged_bytes: int = 0
    pending_upload: int = Field(default=0, description="Staged files not yet confirmed.")
    ingested_total: int = Field(default=0, description="Files copied off since start.")
    uploaded_total: int = Field(default=0, description="Files confirmed on the NAS since start.")
    failed_total: int = Field(default=0, description="Upload attempts that failed since start.")
    last_error: str | None = None


class DashcamReport(BaseModel):
    """``GET /api/v1/dashcam``: the loop's status and the newest manifests."""

    status: DashcamStatus
    manifests: list[IngestManifest] = Field(description="Newest first, at most ``limit``.")
    total_manifests: int = Field(description="Every manifest in the staging folder's ledger.")
