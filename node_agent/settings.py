"""Agent settings: environment (``CAMFLEET_``) over a YAML file, unknown keys refused."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from node_agent.schemas import CAM_ID_PATTERN, NODE_ID_PATTERN, Codec, Position

# Secrets that appear in examples and tutorials; a node configured with one is refused.
WELL_KNOWN_SECRETS = frozenset({"changethis", "changeme", "secret", "password", "token", "admin"})


class SettingsError(Exception):
    """The configuration cannot be used; the message says what to change."""


class CameraSettings(BaseModel):
    """What the camera records."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(default="synthetic", pattern=r"^(synthetic)$")
    width: int = Field(default=1280, ge=16, le=7680, multiple_of=2)
    height: int = Field(default=720, ge=16, le=4320, multiple_of=2)
    fps: float = Field(default=30.0, gt=0, le=120)
    codec: Codec = Codec.h264
    bitrate_bps: int = Field(default=8_000_000, ge=100_000, le=200_000_000)
    gop_s: float = Field(default=1.0, gt=0, le=10, description="Keyframe (and fragment) spacing.")


def yaml_under_env(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    path_variable: str,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Sources in priority order: arguments, environment, then the YAML file named by
    ``path_variable`` (when set)."""
    yaml_path = os.environ.get(path_variable)
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
    if yaml_path:
        sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_path))
    return tuple(sources)


def check_token(name: str, value: SecretStr | None) -> None:
    """Refuse empty, short and well-known secrets with a message naming the setting."""
    if value is None:
        return
    raw = value.get_secret_value()
    if raw.lower() in WELL_KNOWN_SECRETS or len(raw) < 16:
        raise ValueError(
            f"{name} is too weak: use at least 16 random characters "
            "(for example: python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )


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
    clock_poll_interval_s: float = Field(default=5.0, gt=0, le=3600)
    chronyc_path: str = "chronyc"
    chronyc_args: list[str] = Field(
        default_factory=list, description="Extra chronyc arguments, e.g. ['-h', '127.0.0.1']."
    )
    max_schedule_ahead_s: float = Field(default=300.0, gt=0)
    camera: CameraSettings = CameraSettings()

    @model_validator(mode="after")
    def _secrets_are_strong(self) -> AgentSettings:
        check_token("api_token", self.api_token)
        check_token("fleet_token", self.fleet_token)
        if self.coordinator_url and self.fleet_token is None:
            raise ValueError("coordinator_url is set but fleet_token is not: set both or neither")
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
        return yaml_under_env(settings_cls, init_settings, env_settings, "CAMFLEET_AGENT_CONFIG")

    @property
    def recordings_path(self) -> Path:
        """Where recordings and manifests live."""
        return self.recordings_dir or self.data_dir / "recordings"

    def redacted(self) -> dict[str, Any]:
        """The settings as they may be shown: secrets masked."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'


def load_agent_settings(**overrides: Any) -> AgentSettings:
    """Build settings from the environment and YAML, or raise SettingsError with every problem."""
    try:
        return AgentSettings(**overrides)
    except ValidationError as err:
        raise SettingsError(format_validation_error("agent", err)) from err


def format_validation_error(program: str, err: ValidationError) -> str:
    """One readable line per problem: the setting's name and what is wrong with it."""
    lines = [f"camfleet {program}: the configuration is not valid:"]
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "(settings)"
        msg = problem["msg"]
        if problem["type"] == "extra_forbidden":
            msg = "unknown setting (check its spelling; unknown keys are refused)"
        lines.append(f"  - {where}: {msg}")
    return "\n".join(lines)


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
        persistent_value(settings.data_dir / "api_token", lambda: secrets.token_urlsafe(24))
    )
    return node_id, token
