"""Agent settings: environment (``CAMFLEET_``) over a YAML file, unknown keys refused."""

from __future__ import annotations

import os
import secrets
import socket
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from common.logmodes import LoggingSettings, Mode
from common.metrics_access import MetricsSettings
from common.notify.settings import NotificationSettings
from common.settings import (
    SettingsError,
    check_token,
    format_validation_error,
    new_token,
    yaml_under_env,
)
from node_agent.audio.settings import AudioSettings
from node_agent.dashcam.settings import DashcamSettings
from node_agent.discovery.settings import AgentDiscoverySettings
from node_agent.liveview.settings import LiveViewSettings
from node_agent.network.settings import NetworkSettings
from node_agent.power.settings import PowerSettings
from node_agent.schemas import CAM_ID_PATTERN, NODE_ID_PATTERN, Codec, Position
from node_agent.sync.settings import SyncSettings
from node_agent.timelapse.settings import TimelapseSettings


class Profile(BaseModel):
    """One way to record: resolution, frame rate, codec, bitrate."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(ge=16, le=7680, multiple_of=2)
    height: int = Field(ge=16, le=4320, multiple_of=2)
    fps: float = Field(gt=0, le=120)
    codec: Codec = Codec.h264
    bitrate_bps: int = Field(
        default=30_000_000, ge=100_000, le=400_000_000, description="Clamped to the bounds."
    )

    @property
    def name(self) -> str:
        """E.g. '1080p30 H.265' or '640x360@25 H.264'."""
        standard = {2160: "4K", 1080: "1080p", 720: "720p"}
        size = standard.get(self.height, f"{self.width}x{self.height}@")
        rate = f"{self.fps:g}"
        return f"{size}{rate} {'H.265' if self.codec == Codec.h265 else 'H.264'}"


# The soccer-rig plan: 4K30 H.265, falling back to H.264, then to 1080p.
DEFAULT_PROFILES = [
    Profile(width=3840, height=2160, fps=30, codec=Codec.h265),
    Profile(width=3840, height=2160, fps=30, codec=Codec.h264),
    Profile(width=1920, height=1080, fps=30, codec=Codec.h265),
    Profile(width=1920, height=1080, fps=30, codec=Codec.h264),
]


class CameraSettings(BaseModel):
    """The camera and how it records.

    ``profiles`` is tried in order; ``width``/``height``/``fps``/``codec``/``bitrate_bps``
    are a shorthand for a single profile (handy in the environment).
    """

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="auto", pattern=r"^(auto|picamera2|v4l2|synthetic)$")
    device: str | None = Field(
        default=None, description="V4L2 device: an index, /dev/videoN or /dev/v4l/by-id/..."
    )
    profiles: list[Profile] | None = Field(default=None, min_length=1)
    width: int | None = Field(default=None, ge=16, le=7680, multiple_of=2)
    height: int | None = Field(default=None, ge=16, le=4320, multiple_of=2)
    fps: float | None = Field(default=None, gt=0, le=120)
    codec: Codec | None = None
    bitrate_bps: int | None = Field(default=None, ge=100_000, le=400_000_000)
    bitrate_min_bps: int = Field(default=25_000_000, ge=100_000)
    bitrate_max_bps: int = Field(default=35_000_000, ge=100_000)
    gop_s: float = Field(default=1.0, gt=0, le=10, description="Keyframe (and fragment) spacing.")
    probation_s: float = Field(
        default=3.0, ge=0.5, le=60, description="The first seconds of a recording are watched."
    )
    max_drop_ratio: float = Field(default=0.05, ge=0, le=1)
    frame_timeout_s: float = Field(default=2.0, gt=0, le=60)
    jpeg_quality: int = Field(default=85, ge=1, le=100)
    encoder_options: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Extra options per encoder, e.g. {libx265: {preset: fast}}",
    )
    audio: bool = Field(
        default=False, description="Mux an audio track (the start beep lands in every file)."
    )
    audio_device: str = Field(
        default="default",
        description="ALSA capture device (PyAV format 'alsa'), or a WAV file with "
        "audio_format 'wav'.",
    )
    audio_format: str = Field(default="alsa", pattern=r"^(alsa|wav)$")
    audio_sample_rate: int = Field(default=48_000, ge=8000, le=192_000)
    audio_channels: int = Field(default=1, ge=1, le=2)
    audio_bitrate_bps: int = Field(default=96_000, ge=16_000, le=512_000)
    frame_sync: str = Field(
        default="off",
        pattern=r"^(off|auto|server|client)$",
        description="libcamera software camera sync through picamera2: auto is server on "
        "the sync master and client elsewhere.",
    )
    frame_sync_timeout_s: float = Field(default=5.0, gt=0, le=120)

    @model_validator(mode="after")
    def _one_way_to_say_it(self) -> CameraSettings:
        shorthand = [self.width, self.height, self.fps, self.codec, self.bitrate_bps]
        if self.profiles is not None and any(v is not None for v in shorthand):
            raise ValueError("set either camera.profiles or camera.width/height/fps/codec")
        if self.bitrate_min_bps > self.bitrate_max_bps:
            raise ValueError("camera.bitrate_min_bps is above camera.bitrate_max_bps")
        return self

    def profile_list(self) -> list[Profile]:
        """The profiles to try, best first."""
        if self.profiles is not None:
            return list(self.profiles)
        if all(v is None for v in (self.width, self.height, self.fps, self.codec)):
            return list(DEFAULT_PROFILES)
        return [
            Profile(
                width=self.width or 1920,
                height=self.height or 1080,
                fps=self.fps or 30.0,
                codec=self.codec or Codec.h264,
                bitrate_bps=self.bitrate_bps or 30_000_000,
            )
        ]

    def clamp_bitrate(self, bitrate_bps: int) -> int:
        """The bitrate held within [bitrate_min_bps, bitrate_max_bps]."""
        return max(self.bitrate_min_bps, min(self.bitrate_max_bps, bitrate_bps))


class StorageSettings(BaseModel):
    """The recordings disk."""

    model_config = ConfigDict(extra="forbid")

    reserve_s: float = Field(
        default=120.0, ge=0, description="Stop a recording when only this much video still fits."
    )
    min_free_minutes: float = Field(
        default=15.0, ge=0, description="A start needs this many minutes (or planned_duration_s)."
    )
    warn_free_percent: float = Field(
        default=15.0,
        gt=0,
        le=100,
        description="Under this much free space (percent of the disk) the level is 'warn': "
        "offload soon.",
    )
    critical_free_percent: float = Field(
        default=10.0,
        ge=0,
        lt=100,
        description="Under this much free space the level is 'critical' and starts are refused "
        "(after retention has deleted what offloaded footage it could).",
    )
    retention_free_percent: float = Field(
        default=15.0,
        gt=0,
        le=100,
        description="While free space is under this percent, retention deletes offloaded "
        "recordings, oldest first, until it is reached again. Never un-offloaded ones.",
    )
    housekeeping_interval_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="How often the housekeeper rescans the recordings and runs retention.",
    )
    delete_after_confirm: bool = Field(
        default=False,
        description="Delete each recording right after a copy elsewhere is confirmed by its "
        "SHA-256, whatever the free space.",
    )

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> StorageSettings:
        c, w, r = self.critical_free_percent, self.warn_free_percent, self.retention_free_percent
        if not c < w <= r:
            raise ValueError(
                f"storage thresholds must be critical_free_percent < warn_free_percent <= "
                f"retention_free_percent; got {c:g} < {w:g} <= {r:g}: retention must start "
                "deleting offloaded footage no later than the warning, and the warning must "
                "come before starts are refused"
            )
        return self


CONFIG_VARIABLE = "CAMFLEET_AGENT_CONFIG"
DATA_DIR_CONFIG = "agent.yaml"  # read at start when CONFIG_VARIABLE is not set
# Which YAML file to read, when not the one CONFIG_VARIABLE names (see load_agent_settings).
CONFIG_FILE: ContextVar[Path | None] = ContextVar("camfleet_agent_config_file", default=None)

TRUE = {"1", "true", "yes", "on"}  # how an environment variable says true


class GateSettings(BaseModel):
    """What a start checks before it arms the recorder."""

    model_config = ConfigDict(extra="forbid")

    max_cpu_temp_c: float = Field(default=80.0, gt=0, le=150)
    thermal_path: Path = Path("/sys/class/thermal/thermal_zone0/temp")
    min_battery_percent: float = Field(
        default=55.0,
        ge=0,
        le=100,
        description="Refuse a start under this battery percentage: at or above "
        "power.disconnect_percent, so a recording is not started only to be stopped.",
    )
    clock_policy: Literal["refuse", "warn"] = Field(
        default="refuse",
        description="What an unsynchronized clock, or an error bound over the limit, does "
        "to a start.",
    )
    max_clock_error_ms: float = Field(
        default=5.0,
        gt=0,
        description="The limit on the clock's error bound (|offset| + root dispersion + "
        "root delay / 2); tighter on wired nodes.",
    )

    @model_validator(mode="before")
    @classmethod
    def _old_clock_keys(cls, data: Any) -> Any:
        """Settings files from before the sync gate: ``max_clock_offset_ms`` becomes the
        bound's limit, ``require_clock_sync`` the policy (true: refuse, false: warn)."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        offset = data.pop("max_clock_offset_ms", None)
        require = data.pop("require_clock_sync", None)
        if offset is not None:
            data.setdefault("max_clock_error_ms", offset)
        if require is not None:
            strict = require if isinstance(require, bool) else str(require).lower() in TRUE
            data.setdefault("clock_policy", "refuse" if strict else "warn")
        return data


class AgentSettings(BaseSettings):
    """Settings of one node agent."""

    model_config = SettingsConfigDict(
        env_prefix="CAMFLEET_",
        env_nested_delimiter="__",
        extra="forbid",
        yaml_file=None,
    )

    node_id: str | None = Field(default=None, pattern=NODE_ID_PATTERN)
    cam_id: str = Field(default="CAM_C", pattern=CAM_ID_PATTERN)
    position: Position = Position.centre
    host: str = "0.0.0.0"
    port: int = Field(default=8081, ge=1, le=65535)
    data_dir: Path = Path("./camfleet-agent-data")
    recordings_dir: Path | None = None
    api_token: SecretStr | None = None
    coordinator_url: str | None = None
    fleet_token: SecretStr | None = None
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=3600)
    join_backoff_max_s: float = Field(default=30.0, gt=0, le=3600)
    status_stream_enabled: bool = Field(
        default=True, description="Offer GET /api/v1/status/stream (the coordinator's watch)."
    )
    status_stream_heartbeat_s: float = Field(
        default=1.0, gt=0, le=60, description="A comment on the status stream this often."
    )
    status_stream_debounce_s: float = Field(
        default=0.2, ge=0, le=10, description="At most one status event per this long."
    )
    status_stream_check_s: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the status is re-read for changes the node makes by itself.",
    )
    status_stream_max_clients: int = Field(
        default=2, ge=1, le=16, description="Open status streams; a new one ends the oldest."
    )
    status_stream_send_timeout_s: float = Field(
        default=2.0, gt=0, le=60, description="A stream client that takes longer is dropped."
    )
    status_file: Path | None = Field(
        default=Path("/run/camfleet/status.json"),
        description="The status file (JSON, rewritten atomically after each capture and "
        "state change; docs/status-file.md); empty or null turns it off.",
    )
    status_file_interval_s: float = Field(
        default=60.0, ge=0, le=86_400, description="Also rewrite it this often (0: never)."
    )
    clock_poll_interval_s: float = Field(default=5.0, gt=0, le=3600)
    chronyc_path: str = "chronyc"
    chronyc_args: list[str] = Field(
        default_factory=list, description="Extra chronyc arguments, e.g. ['-h', '127.0.0.1']."
    )
    max_schedule_ahead_s: float = Field(default=300.0, gt=0)
    camera: CameraSettings = CameraSettings()
    storage: StorageSettings = StorageSettings()
    gates: GateSettings = GateSettings()
    timelapse: TimelapseSettings = TimelapseSettings()
    power: PowerSettings = PowerSettings()
    dashcam: DashcamSettings = DashcamSettings()
    sync: SyncSettings = SyncSettings()
    audio: AudioSettings = AudioSettings()
    liveview: LiveViewSettings = LiveViewSettings()
    network: NetworkSettings = NetworkSettings()
    discovery: AgentDiscoverySettings = AgentDiscoverySettings()
    mode: Mode = Field(
        default="production",
        description="production: an in-memory log ring only; development: JSON-lines log "
        "files too. data_dir/mode.json (PUT /api/v1/mode) overrides it.",
    )
    logging: LoggingSettings = LoggingSettings()
    notifications: NotificationSettings = NotificationSettings()
    metrics: MetricsSettings = MetricsSettings()

    @field_validator("status_file", mode="before")
    @classmethod
    def _empty_is_off(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _secrets_are_strong(self) -> AgentSettings:
        check_token("api_token", self.api_token)
        check_token("fleet_token", self.fleet_token)
        if self.coordinator_url and self.fleet_token is None:
            raise ValueError("coordinator_url is set but fleet_token is not: set both or neither")
        return self

    @model_validator(mode="after")
    def _battery_thresholds_in_order(self) -> AgentSettings:
        p, g = self.power, self.gates.min_battery_percent
        if not p.disconnect_percent <= g <= p.warn_percent:
            raise ValueError(
                "gates.min_battery_percent must lie between power.disconnect_percent and "
                f"power.warn_percent; got {p.disconnect_percent:g} <= {g:g} <= "
                f"{p.warn_percent:g}: a start under the disconnect threshold would be "
                "stopped at once"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        chosen = CONFIG_FILE.get()
        if chosen is not None:  # a candidate being validated, or the data folder's file
            yaml = YamlConfigSettingsSource(settings_cls, yaml_file=chosen)
            return (init_settings, env_settings, yaml)
        return yaml_under_env(settings_cls, init_settings, env_settings, CONFIG_VARIABLE)

    @property
    def recordings_path(self) -> Path:
        """Where recordings and manifests live."""
        return self.recordings_dir or self.data_dir / "recordings"

    def redacted(self) -> dict[str, Any]:
        """The settings as they may be shown: secrets masked."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


def settings_file(settings: AgentSettings) -> Path:
    """The node's settings file: the one ``CAMFLEET_AGENT_CONFIG`` names, else
    ``agent.yaml`` in the data folder (read at start when it exists)."""
    named = os.environ.get(CONFIG_VARIABLE)
    return Path(named) if named else settings.data_dir / DATA_DIR_CONFIG


def load_agent_settings(**overrides: Any) -> AgentSettings:
    """Build settings from the environment and YAML, or raise SettingsError with every problem.

    Without ``CAMFLEET_AGENT_CONFIG`` the data folder's ``agent.yaml`` (written by the
    configuration API) is read, under the environment, when it exists.
    """
    try:
        settings = AgentSettings(**overrides)
        if not os.environ.get(CONFIG_VARIABLE):
            own = settings.data_dir / DATA_DIR_CONFIG
            if own.is_file():
                token = CONFIG_FILE.set(own)
                try:
                    settings = AgentSettings(**overrides)
                finally:
                    CONFIG_FILE.reset(token)
        return settings
    except ValidationError as err:
        raise SettingsError(format_validation_error("agent", err)) from err


def persistent_value(path: Path, make: Any) -> str:
    """Read a value kept in a file, creating it (0600, atomically) on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    value = str(make())
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return value


def resolve_identity(settings: AgentSettings) -> tuple[str, SecretStr]:
    """The node id and API token: configured, or made once and kept in the data folder."""
    node_id = settings.node_id or persistent_value(
        settings.data_dir / "node_id",
        lambda: f"{socket.gethostname().split('.')[0][:40]}-{secrets.token_hex(3)}",
    )
    token = settings.api_token or SecretStr(
        persistent_value(settings.data_dir / "api_token", new_token)
    )
    return node_id, token
