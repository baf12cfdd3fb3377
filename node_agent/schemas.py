"""The node agent's wire contract: every body it accepts or returns.

The coordinator imports these models to talk to agents (``app/fleet/client.py``);
the agent never imports the coordinator. Times are UTC nanoseconds since the
epoch (``*_ns``) and durations carry their unit in the name.

The bases and id shapes are in ``wirebase``; the clock's models in ``sync/schemas.py``,
the beep's in ``audio/schemas.py``, the join's in ``link_schemas.py``, and each
capability's status beside it (power, dashcam, timelapse). All are re-exported here, so
this stays the one place a reader of the wire imports from.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, StrictFloat, StrictInt

from common.http import ErrorBody
from node_agent.audio.schemas import AudioStatus, BeepRequest, BeepResult
from node_agent.dashcam.schemas import DashcamStatus
from node_agent.discovery.schemas import LinkStatus
from node_agent.link_schemas import (
    Handshake,
    HandshakeRequest,
    JoinChallenge,
    JoinChallengeRequest,
    JoinRequest,
    JoinResponse,
)
from node_agent.liveview.schemas import LiveViewStatus
from node_agent.network.schemas import NetworkInterface, NetworkMode, NetworkStatus
from node_agent.power.schemas import PowerStatus
from node_agent.sync.schemas import ChronySource, ClockStatus, FrameSyncReport
from node_agent.timelapse.schemas import TimelapseStatus
from node_agent.wirebase import (
    CAM_ID_PATTERN,
    COMMAND_ID_PATTERN,
    NODE_ID_PATTERN,
    SESSION_ID_PATTERN,
    Answer,
    CamId,
    Codec,
    CommandId,
    CopyPlace,
    HeaderToken,
    Hostname,
    NodeId,
    Position,
    PublicKey,
    RecorderState,
    SessionId,
    Sha256,
    ShortText,
    Wire,
)

# Re-exported: part of the wire contract, defined beside what they describe.
__all__ = [
    "CAM_ID_PATTERN",
    "COMMAND_ID_PATTERN",
    "NODE_ID_PATTERN",
    "SESSION_ID_PATTERN",
    "Answer",
    "BeepRequest",
    "BeepResult",
    "CamId",
    "ChronySource",
    "ClockStatus",
    "Codec",
    "CommandId",
    "CopyPlace",
    "ErrorBody",
    "FrameSyncReport",
    "Handshake",
    "HandshakeRequest",
    "HeaderToken",
    "Hostname",
    "JoinChallenge",
    "JoinChallengeRequest",
    "JoinRequest",
    "JoinResponse",
    "NetworkInterface",
    "NetworkMode",
    "NetworkStatus",
    "NodeId",
    "Position",
    "PublicKey",
    "RecorderState",
    "SessionId",
    "Sha256",
    "ShortText",
    "Wire",
]


class Health(Answer):
    """Liveness answer of ``GET /health``."""

    status: str = "ok"
    version: str
    node_id: str
    uptime_seconds: float = Field(default=0.0, description="Since the agent started.")


class StartRequest(Wire):
    """``POST /api/v1/recording/start``."""

    session_id: SessionId
    command_id: CommandId
    start_at_ns: StrictInt | None = Field(
        default=None,
        ge=0,
        le=2**63 - 1,
        description="Begin at this UTC instant on the node's clock; absent means now.",
    )
    planned_duration_s: StrictFloat | StrictInt | None = Field(
        default=None,
        gt=0,
        le=24 * 3600,
        description="How long the recording is meant to last; the storage gate checks it fits.",
    )


class StopRequest(Wire):
    """``POST /api/v1/recording/stop``."""

    session_id: SessionId
    command_id: CommandId


class StartResult(Answer):
    """What a start command did on this node."""

    session_id: str
    command_id: str
    state: RecorderState
    file_name: str
    start_at_ns: int = Field(description="When the recorder begins (scheduled or now).")
    scheduled: bool
    armed_at_ns: int
    profile: str = Field(description="The profile this recording uses, e.g. '1080p30 H.265'.")
    warnings: list[str] = Field(
        default_factory=list, description="Gates that passed with a warning (e.g. clock)."
    )
    late_ns: int = Field(
        default=0,
        ge=0,
        description="How far past its start instant the node armed; it starts at once.",
    )


class Manifest(Answer):
    """The JSON written beside each recording (``{SESSION_ID}_{CAM_ID}.json``)."""

    session_id: str
    cam_id: str
    node_id: str
    position: Position
    file_name: str
    scheduled_start_ns: int | None
    first_frame_ns: int
    realtime_start: bool = Field(
        default=False, description="The last stretch before the start ran under SCHED_FIFO."
    )
    last_frame_ns: int
    clock_offset_ns: int | None
    clock_synchronized: bool
    clock_error_bound_ns: int | None = Field(
        default=None, description="The clock's error bound when the recording started."
    )
    clock_reference: str | None = Field(
        default=None, description="The reference chrony followed (the master's address)."
    )
    start_deadline_ns: int | None = Field(
        default=None,
        description="This node's clock reading at the scheduled fleet instant (scheduled "
        "start + clock offset when the start is corrected by it).",
    )
    start_late_ns: int = Field(
        default=0,
        ge=0,
        description="How far past start_deadline_ns the recording began: it armed late, or "
        "waited for frame sync (0 when on time or not scheduled).",
    )
    first_frame_source: str = Field(
        default="capture",
        description="sensor: the first frame's time is the camera's SensorTimestamp turned "
        "into wall time; capture: the instant the frame was produced or received.",
    )
    frame_sync: FrameSyncReport | None = Field(
        default=None, description="libcamera software camera sync, when camera.frame_sync asks."
    )
    duration_s: float
    frame_count: int
    dropped_frames: int
    width: int
    height: int
    fps: float
    codec: Codec
    encoder: str
    bitrate_bps: int
    profile: str = ""
    profile_notes: list[str] = Field(
        default_factory=list, description="Why better profiles were not used, or were left."
    )
    size_bytes: int
    sha256: str
    software_version: str
    stop_reason: str = "stopped"
    interrupted: bool = Field(
        default=False,
        description="The agent died while recording; the manifest was written at its next start "
        "and duration_s is the playable duration.",
    )
    lockview_file: str | None = Field(default=None, description="The Lock View still, if taken.")
    offloaded: bool = Field(
        default=False,
        description="A copy elsewhere was confirmed by its SHA-256 (POST .../confirm); only "
        "offloaded recordings are ever deleted.",
    )
    offloaded_at_ns: int | None = Field(default=None, description="When the copy was made.")
    offloaded_to: str | None = Field(default=None, description="Where the verified copy is.")
    audio_track: bool = Field(
        default=False, description="The file carries an audio track (camera.audio)."
    )
    audio_note: str | None = Field(
        default=None,
        description="Why the audio track is missing or cut short (the video was recorded).",
    )


class StopResult(Answer):
    """What a stop command did: the manifest when a file was finished."""

    session_id: str
    command_id: str
    state: str = Field(description="'stopped', or 'cancelled' when the start had not come yet.")
    manifest: Manifest | None = None


class RecorderStatus(Answer):
    """The recorder part of a node's status."""

    state: RecorderState
    session_id: str | None = None
    file_name: str | None = None
    start_at_ns: int | None = None
    first_frame_ns: int | None = None
    frames: int = 0
    dropped_frames: int = 0
    encode_fps: float = 0.0
    codec: Codec
    width: int
    height: int
    fps: float
    bitrate_bps: int
    measured_bitrate_bps: int | None = Field(
        default=None,
        description="The bitrate the running recording actually writes: bytes written x 8 "
        "/ seconds since its first frame. None when idle or before the first frame.",
    )
    profile: str = Field(description="The profile the next (or current) recording uses.")
    profile_notes: list[str] = Field(default_factory=list)
    camera: str = Field(description="The camera backend, or why there is none.")
    camera_busy: str | None = Field(default=None, description="Who holds the camera, if anyone.")
    last_error: str | None = None
    last_stop_reason: str | None = None
    start_late_ns: int = Field(
        default=0, ge=0, description="How late the current recording began (see Manifest)."
    )
    frame_sync: FrameSyncReport | None = None


class DiskLevel(StrEnum):
    """How full the recordings disk is, against the housekeeper's thresholds."""

    ok = "ok"
    warn = "warn"  # under storage.warn_free_percent: offload soon
    critical = "critical"  # under storage.critical_free_percent: starts are refused


class DiskStatus(Answer):
    """The recordings disk, as the housekeeper sees it."""

    path: str
    total_bytes: int
    free_bytes: int
    minutes_left: float = Field(description="At the current (or planned) bitrate.")
    free_percent: float = 100.0
    level: DiskLevel = DiskLevel.ok
    unoffloaded_bytes: int = Field(
        default=0, description="Bytes of finished recordings with no confirmed copy elsewhere."
    )
    unoffloaded_count: int = 0
    offloaded_bytes: int = Field(default=0, description="Bytes retention may delete.")
    oldest_unoffloaded_age_s: float | None = Field(
        default=None, description="Age of the oldest recording not yet offloaded."
    )
    alarm: str | None = Field(
        default=None,
        description="Set when the disk is full of footage not yet offloaded: recording "
        "stopped (or starts refused) and nothing was deleted. Offload to clear it.",
    )
    deleted_bytes_total: int = Field(
        default=0,
        description="Bytes of offloaded footage retention and deletes freed since the agent "
        "started.",
    )


class NodeStatus(Answer):
    """``GET /api/v1/status``: everything the dashboard shows for this node."""

    node_id: str
    cam_id: str
    position: Position
    hostname: str
    version: str
    time_ns: int
    uptime_s: float
    recorder: RecorderStatus
    clock: ClockStatus
    disk: DiskStatus
    coordinator: str = Field(
        description="'joined', 'retrying', 'searching' (discovery), or 'none' when not configured."
    )
    coordinator_link: LinkStatus | None = Field(
        default=None,
        description="How the coordinator was found (configured or discovered), where, and "
        "the last error; None without a link.",
    )
    timelapse: TimelapseStatus | None = Field(
        default=None, description="The timelapse mode, when the agent has one."
    )
    power: PowerStatus | None = Field(
        default=None, description="Battery and AC, and what the power monitor did."
    )
    dashcam: DashcamStatus | None = Field(
        default=None, description="The dashcam mode, when dashcam.enabled."
    )
    audio: AudioStatus | None = Field(
        default=None, description="Tones (start beep, Lock View, degraded) and the audio track."
    )
    liveview: LiveViewStatus | None = Field(
        default=None, description="The live view: viewers, frames sent, why it last turned off."
    )
    cpu_temp_c: float | None = Field(
        default=None,
        ge=-100,
        le=250,
        description="The CPU temperature (gates.thermal_path, what the temperature gate "
        "reads); null when there is no sensor.",
    )
    network: NetworkStatus | None = Field(
        default=None, description="The network mode: mesh, ap_host, ap_client, wired, wifi, none."
    )


class RecordingEntry(Answer):
    """One file in ``GET /api/v1/recordings``."""

    name: str
    size_bytes: int
    modified_ns: int
    complete: bool = Field(description="False while the file is still being written.")
    manifest: Manifest | None = None


class RecordingList(Answer):
    """``GET /api/v1/recordings``."""

    node_id: str
    recordings: list[RecordingEntry]


class ConfirmRequest(Wire):
    """``POST /api/v1/recordings/{name}/confirm``: a copy elsewhere has this SHA-256."""

    sha256: Sha256
    copied_to: CopyPlace = Field(description="Where the verified copy is.")
    copied_at_ns: StrictInt | None = Field(
        default=None, ge=0, le=2**63 - 1, description="When it was made; absent means now."
    )


class ConfirmResult(Answer):
    """The recording is marked offloaded (its manifest rewritten durably first)."""

    file_name: str
    offloaded: bool
    already: bool = Field(description="It had been confirmed before; nothing changed.")
    deleted: bool = Field(
        default=False, description="Deleted right after confirmation (delete_after_confirm)."
    )
    manifest: Manifest


class DeleteResult(Answer):
    """``DELETE /api/v1/recordings?offloaded=true``: what retention or the operator freed."""

    node_id: str
    deleted: list[str] = Field(description="Every file removed (recordings, manifests, stills).")
    freed_bytes: int
    kept_unoffloaded: int = Field(description="Recordings left because no copy is confirmed.")


class GateResult(Answer):
    """One pre-start check."""

    gate: str = Field(description="camera, storage, temperature, battery or clock.")
    ok: bool
    warning: bool = Field(default=False, description="Passed, but a person should know.")
    reason: str


class SelfTestRequest(Wire):
    """``POST /api/v1/selftest``."""

    duration_s: StrictFloat | StrictInt = Field(default=10.0, ge=1.0, le=120.0)


class SelfTestResult(Answer):
    """What a self-test clip showed."""

    node_id: str
    cam_id: str
    passed: bool
    profile: str
    encoder: str
    duration_s: float
    frames: int
    decoded_frames: int
    dropped_frames: int
    encode_fps: float
    disk_write_bytes_per_s: float
    size_bytes: int
    sha256: str
    gates: list[GateResult]
    errors: list[str] = Field(description="Empty when passed; otherwise what failed and why.")


class LockViewRequest(Wire):
    """``POST /api/v1/lockview``."""

    session_id: SessionId


class LockViewResult(Answer):
    """The framing still saved for a session."""

    session_id: str
    file_name: str
    size_bytes: int
    captured_ns: int
    source: str = Field(description="'stream' (from the running recording) or 'camera'.")
