"""The node agent's wire contract: every body it accepts or returns.

The coordinator imports these models to talk to agents (``app/fleet/client.py``);
the agent never imports the coordinator. Times are UTC nanoseconds since the
epoch (``*_ns``) and durations carry their unit in the name.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StringConstraints

from common.http import ErrorBody
from node_agent.audio.schemas import AudioStatus
from node_agent.dashcam.schemas import DashcamStatus
from node_agent.power.schemas import PowerStatus
from node_agent.timelapse.schemas import TimelapseStatus

__all__ = ["ErrorBody"]  # re-exported: part of the wire contract

# Session ids end up in file names, so they are restricted to a safe alphabet:
# no path separators, no dots, no underscores (the file name's field separator).
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$"
CAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
NODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
COMMAND_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"

SessionId = Annotated[str, StringConstraints(pattern=SESSION_ID_PATTERN)]
CamId = Annotated[str, StringConstraints(pattern=CAM_ID_PATTERN)]
NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
CommandId = Annotated[str, StringConstraints(pattern=COMMAND_ID_PATTERN)]
# Values that end up in an HTTP header or a page: printable ASCII, no spaces, bounded.
HeaderToken = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{16,128}$")]
PublicKey = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
ShortText = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,64}$")]
Hostname = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{0,64}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# Where a verified copy was made, e.g. "coordinator:HOST:/srv/archive/S1/f.mp4": printable.
CopyPlace = Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e]{1,512}$")]


class Wire(BaseModel):
    """Base of every request body: unknown fields are refused, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Answer(BaseModel):
    """Base of every answer and status: fields this version does not know are ignored, so a
    newer peer (a rolling upgrade) still works with an older reader."""

    model_config = ConfigDict(extra="ignore")


class Position(StrEnum):
    """Where a camera stands in the rig."""

    left = "left"
    centre = "centre"
    right = "right"
    other = "other"


class Codec(StrEnum):
    """Video codecs the recorder can be asked for."""

    h264 = "h264"
    h265 = "h265"


class RecorderState(StrEnum):
    """The recorder's life cycle."""

    idle = "idle"
    armed = "armed"  # waiting for its scheduled start_at
    recording = "recording"
    stopping = "stopping"


class Health(Answer):
    """Liveness answer of ``GET /health``."""

    status: str = "ok"
    version: str
    node_id: str


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


class BeepRequest(Wire):
    """``POST /api/v1/recording/beep``: every node has armed; play the start tone at
    ``at_ns`` (fleet time)."""

    session_id: SessionId
    command_id: CommandId
    at_ns: StrictInt = Field(ge=0, le=2**63 - 1)


class BeepResult(Answer):
    """The tone is scheduled (the answer does not wait for it)."""

    session_id: str
    command_id: str
    scheduled: bool = Field(description="False: tones are off here, or the instant has passed.")
    at_ns: int = Field(description="The local instant the tone is played at.")
    reason: str | None = None


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


class FrameSyncReport(Answer):
    """libcamera's software camera sync on this recording (``camera.frame_sync``)."""

    mode: str = Field(description="server, client, or off.")
    ready: bool = Field(description="libcamera reported SyncReady before the recording began.")
    timer_us: int | None = Field(
        default=None,
        description="SyncTimer on the first SyncReady frame: how far (µs) this camera's "
        "frame start was from the agreed instant; a client's frame-start difference from "
        "the server.",
    )
    waited_ms: float = Field(default=0.0, description="How long the recorder waited for it.")
    error: str | None = Field(
        default=None, description="Why sync is not in effect (timed out, not a Pi camera)."
    )


class ChronySource(Answer):
    """One line of ``chronyc -c sources`` joined with its ``sourcestats`` line."""

    address: str
    mode: str = Field(description="server, peer or refclock.")
    state: str = Field(
        description="selected, combined, not_combined, unreachable, falseticker, jittery "
        "or unknown."
    )
    stratum: int
    poll_log2: int
    reach: int = Field(description="The reachability register (0-255).")
    last_rx_s: float | None = Field(default=None, description="Seconds since the last sample.")
    offset_ns: int | None = Field(default=None, description="Last sample's adjusted offset.")
    error_ns: int | None = Field(default=None, description="Its error margin.")
    samples: int | None = None
    frequency_ppm: float | None = None
    skew_ppm: float | None = None
    std_dev_ns: int | None = None


class ClockStatus(Answer):
    """The node's clock as chrony reports it."""

    source: str = Field(description="'chrony' when chronyc answered, else 'none'.")
    synchronized: bool
    offset_ns: int | None = Field(
        default=None, description="Local clock minus reference time; positive = ahead."
    )
    stratum: int | None = None
    reference: str | None = None
    error: str | None = None
    read_at_ns: int | None = None
    # Issue 10 contract: the full tracking report, the bound, the role and the sources.
    error_bound_ns: int | None = Field(
        default=None,
        description="|offset| + root dispersion + root delay / 2: how far from the fleet's "
        "time this clock may be.",
    )
    offset_error_ns: int | None = Field(
        default=None,
        description="root dispersion + root delay / 2: how wrong the offset itself may be, "
        "so the error left once a start is corrected by it.",
    )
    rms_offset_ns: int | None = None
    frequency_ppm: float | None = None
    skew_ppm: float | None = None
    root_delay_ns: int | None = None
    root_dispersion_ns: int | None = None
    leap_status: str | None = None
    reference_id: str | None = None
    selected_source: str | None = None
    last_update_age_s: float | None = None
    role: str | None = Field(default=None, description="master, client or none.")
    master: str | None = Field(default=None, description="The master a client follows.")
    follows_master: bool | None = None
    sources: list[ChronySource] = Field(default_factory=list)


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
    coordinator: str = Field(description="'joined', 'retrying', or 'none' when not configured.")
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


class JoinChallengeRequest(Wire):
    """``POST /api/v1/nodes/challenge``: a nonce to sign for the next join of ``node_id``."""

    node_id: NodeId


class JoinChallenge(Answer):
    """A single-use nonce; the join that follows signs it (``common.identity``)."""

    node_id: str
    nonce: str
    expires_in_s: float


class JoinRequest(Wire):
    """What an agent sends to ``POST /api/v1/nodes/join`` on the coordinator.

    Headers ``X-Camfleet-Nonce`` and ``X-Camfleet-Signature`` carry the proof: the node's
    Ed25519 signature over the nonce and this exact body (``common.identity.sign``).
    """

    node_id: NodeId
    cam_id: CamId
    position: Position
    port: StrictInt = Field(ge=1, le=65535, description="Where the agent listens.")
    api_token: HeaderToken = Field(description="Bearer token the agent accepts.")
    public_key: PublicKey = Field(
        description="The node's Ed25519 public key (raw, URL-safe base64): registered at the "
        "first join; every later join of this node_id must be signed with its private half."
    )
    version: ShortText
    hostname: Hostname = ""
    recorder_state: RecorderState = RecorderState.idle
    session_id: SessionId | None = None


class JoinResponse(Answer):
    """The coordinator's answer to a join or heartbeat."""

    node_id: str
    address: str
    heartbeat_interval_s: float
    approved: bool = Field(
        default=True, description="False while the node waits for the operator's approval."
    )
