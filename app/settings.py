"""Coordinator settings: environment (``CAMFLEET_``) over a YAML file, unknown keys refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from app.discovery.settings import DiscoverySettings
from common.logmodes import LoggingSettings, Mode
from common.metrics_access import MetricsSettings
from common.notify.settings import NotificationSettings
from common.settings import (
    SettingsError,
    check_token,
    format_validation_error,
    yaml_under_env,
)

USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class CoordinatorSettings(BaseSettings):
    """Settings of the coordinator."""

    model_config = SettingsConfigDict(
        env_prefix="CAMFLEET_", env_nested_delimiter="__", extra="forbid"
    )

    operator_token: SecretStr = Field(description="Bearer token for every operator route.")
    fleet_token: SecretStr = Field(description="Token nodes present to join.")
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=1, le=65535)
    data_dir: Path = Path("./camfleet-data")
    database_url: str | None = None
    default_lead_ms: int = Field(default=1000, ge=0)
    lead_rtt_factor: float = Field(
        default=3.0, ge=1, le=100, description="The lead is at least the p99 round trip x this."
    )
    lead_rtt_window_s: float = Field(
        default=600.0,
        gt=0,
        le=86_400,
        description="Only the round trips of the nodes being started, seen this recently, "
        "set the lead: a stall long ago, or on another node, does not lengthen it.",
    )
    max_auto_lead_ms: int = Field(
        default=3000,
        ge=0,
        le=3_600_000,
        description="The most the round trips may raise a lead to. A node slower than that "
        "starts late and says so (start_late_ns); a longer lead can still be asked for.",
    )
    beep: bool = Field(default=True, description="Play the start tone once every node has armed.")
    beep_cams: list[str] = Field(
        default_factory=lambda: ["CAM_C"], description="The cameras that play the start tone."
    )
    min_lead_ms: int = Field(default=100, ge=0)
    max_lead_ms: int = Field(default=60_000, ge=1, le=3_600_000)
    command_timeout_s: float = Field(default=2.0, gt=0, le=120)
    stop_timeout_s: float = Field(default=15.0, gt=0, le=600)
    poll_interval_s: float = Field(default=5.0, gt=0, le=3600)
    busy_poll_interval_s: float = Field(
        default=0.5,
        gt=0,
        le=3600,
        description="How often a node that is armed, recording or stopping is read, so a "
        "change it makes on its own (a stop, an error) reaches the live pages soon.",
    )
    offline_after_s: float = Field(default=15.0, gt=0)
    watch_enabled: bool = Field(
        default=True,
        description="Hold each node's status stream (GET /api/v1/status/stream): its "
        "changes and its death reach the live pages within a second.",
    )
    watch_heartbeat_timeout_s: float = Field(
        default=1.5,
        gt=0,
        le=60,
        description="A watched node that sends no event or heartbeat this long is re-probed; "
        "offline if the probe fails too.",
    )
    watch_probe_timeout_s: float = Field(
        default=1.0, gt=0, le=60, description="The re-probe's deadline (one status call)."
    )
    watch_backoff_max_s: float = Field(
        default=10.0, gt=0, le=3600, description="The longest wait before a stream reconnects."
    )
    watched_poll_interval_s: float = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="A node whose stream is up is still polled this often (and whenever "
        "its manifests are due), instead of every poll_interval_s.",
    )
    watch_max_events_per_s: int = Field(
        default=20, ge=1, le=10_000, description="More from one node's stream drops it."
    )
    heartbeat_interval_s: float = Field(default=5.0, gt=0, le=3600)
    manifest_sync_interval_s: float = Field(default=30.0, gt=0)
    approve_new_nodes: bool = Field(
        default=False,
        description="New nodes wait for the operator's approval (POST "
        "/api/v1/nodes/{id}/approve) before they are called or join sessions.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Peer addresses of reverse proxies whose X-Forwarded-For is believed. "
        "Empty (the default): a node is always called back at the TCP peer of its join.",
    )
    per_node_calls: int = Field(default=4, ge=1, le=64, description="Calls in flight per node.")
    per_node_queue: int = Field(
        default=32, ge=0, le=10_000, description="Calls that may wait for a busy node."
    )
    slow_call_s: float = Field(
        default=1.0, gt=0, description="A quick call slower than this marks the node slow."
    )
    body_read_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="A request body must arrive within this."
    )
    stale_session_after_s: float = Field(
        default=300.0,
        gt=0,
        description="A session whose nodes have all been unreachable this long is ended.",
    )

    archive_dir: Path | None = Field(
        default=None,
        description="Where offloaded recordings are kept, one folder per session; "
        "default: data_dir/archive.",
    )
    offload_per_node: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Files pulled from one node at once (1: a recording keeps its disk).",
    )
    liveview_max_viewers: int = Field(
        default=4, ge=1, le=64, description="Browsers watching one node's live view at once."
    )
    offload_concurrency: int = Field(
        default=4, ge=1, le=256, description="Files pulled at once over the whole fleet."
    )
    offload_while_recording: Literal["skip", "throttle", "allow"] = Field(
        default="skip",
        description="A node that records: skip its files (they wait for the next offload), "
        "pull them at offload_recording_bytes_per_s, or pull them at full speed.",
    )
    offload_recording_bytes_per_s: int = Field(
        default=4_000_000, gt=0, description="The pace of 'throttle' while a node records."
    )
    offload_max_bytes_per_s: int = Field(
        default=0, ge=0, description="A pace for every transfer (0: as fast as it goes)."
    )
    offload_max_attempts: int = Field(
        default=6, ge=1, le=100, description="Tries per file before it is marked failed."
    )
    offload_retry_base_s: float = Field(
        default=1.0, gt=0, le=600, description="First wait before a retry; doubles each time."
    )
    offload_retry_max_s: float = Field(
        default=30.0, gt=0, le=3600, description="The longest wait between retries."
    )
    offload_idle_timeout_s: float = Field(
        default=20.0,
        gt=0,
        le=600,
        description="A node that sends nothing for this long (answer or next bytes) has "
        "gone away: the attempt fails and is retried.",
    )
    mode: Mode = Field(
        default="production",
        description="production: an in-memory log ring only; development: JSON-lines log "
        "files too. data_dir/mode.json (PUT /api/v1/mode) overrides it.",
    )
    logging: LoggingSettings = LoggingSettings()
    notifications: NotificationSettings = NotificationSettings()
    metrics: MetricsSettings = MetricsSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    users: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="People who sign in to the pages: name -> Argon2 password hash "
        "(made by 'camfleet user add NAME'). The operator token signs in too.",
    )
    session_idle_timeout_s: float = Field(
        default=12 * 3600.0,
        gt=0,
        le=30 * 86400,
        description="A browser session unused this long is signed out.",
    )
    session_max_age_s: float = Field(
        default=7 * 86400.0,
        gt=0,
        le=365 * 86400,
        description="A browser session is signed out this long after its sign-in, used or not.",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Failed sign-ins from one address within login_window_s before it must wait.",
    )
    login_max_failures_per_user: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="Failed sign-ins for one user name (from any address) within login_window_s.",
    )
    login_window_s: float = Field(
        default=300.0, gt=0, le=86400, description="The window failed sign-ins are counted in."
    )

    @model_validator(mode="after")
    def _check(self) -> CoordinatorSettings:
        check_token("operator_token", self.operator_token)
        check_token("fleet_token", self.fleet_token)
        if self.operator_token.get_secret_value() == self.fleet_token.get_secret_value():
            raise ValueError("operator_token and fleet_token must differ")
        for name, hashed in self.users.items():
            if not USER_NAME.fullmatch(name):
                raise ValueError(
                    f"users: {name!r} is not a valid user name (1-64 letters, digits, . _ -)"
                )
            if not hashed.get_secret_value().startswith("$argon2"):
                raise ValueError(
                    f"users.{name}: not an Argon2 hash; make one with 'camfleet user add {name}'"
                )
        if not self.min_lead_ms <= self.default_lead_ms <= self.max_lead_ms:
            raise ValueError("default_lead_ms must lie between min_lead_ms and max_lead_ms")
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
        return yaml_under_env(
            settings_cls, init_settings, env_settings, "CAMFLEET_COORDINATOR_CONFIG"
        )

    def redacted(self) -> dict[str, Any]:
        """The settings as they may be shown: tokens, hashes and webhook URLs masked."""
        return self.model_dump(mode="json")  # SecretStr dumps as '**********'

    @property
    def archive_root(self) -> Path:
        """The archive folder: configured, or ``data_dir/archive``."""
        return (self.archive_dir or self.data_dir / "archive").resolve()

    @property
    def db_url(self) -> str:
        """The database URL: configured, or SQLite in the data folder."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'camfleet.db').resolve()}"


def load_coordinator_settings(**overrides: Any) -> CoordinatorSettings:
    """Build settings, or raise SettingsError listing every problem."""
    try:
        return CoordinatorSettings(**overrides)
    except ValidationError as err:
        raise SettingsError(format_validation_error("coordinator", err)) from err
