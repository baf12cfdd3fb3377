"""Network settings (``network:`` in the agent's YAML, ``CAMFLEET_NETWORK__*`` in the env)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

# An SSID the settings may name: what nmcli, a connection name and a log line carry safely.
SSID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,31}$"
CAM_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
Ssid = Annotated[str, Field(pattern=SSID_PATTERN)]


class NetworkSettings(BaseModel):
    """Where the network mode is read from, and how the node manages its Wi-Fi (off by default)."""

    model_config = ConfigDict(extra="forbid")

    ap_host: bool = Field(
        default=False, description="This node hosts the field's access point (reported as ap_host)."
    )
    sys_root: Path = Field(
        default=Path("/"),
        description="The root under which sys/class/net, proc/net/route and "
        "etc/NetworkManager/system-connections are read (tests point it at a fake tree).",
    )
    manage: bool = Field(
        default=False,
        description="Join the mesh and fall back to an access point through NetworkManager. "
        "Off: the agent never touches the machine's network (a laptop, a dev box).",
    )
    master_cam_id: str | None = Field(
        default=None,
        pattern=CAM_ID_PATTERN,
        description="The camera that raises the rig's access point when there is no mesh; "
        "None: sync.master_cam_id (CAM_C), the same camera that serves the fleet's clock.",
    )
    networks: list[Ssid] = Field(
        default_factory=list,
        max_length=16,
        description="The mesh or infrastructure networks to join, by SSID, best first "
        "(passphrases in the secrets file).",
    )
    ap_ssid_template: str = Field(
        default="SOCCER_{cam_id}",
        pattern=r"^[A-Za-z0-9 ._-]{0,22}\{cam_id\}[A-Za-z0-9 ._-]{0,22}$",
        description="The access point's SSID; {cam_id} is the node's cam_id (SOCCER_CAM_C).",
    )
    secrets_file: Path | None = Field(
        default=None,
        description="YAML with ap_psk (the access point's WPA2 key) and networks "
        "(SSID: passphrase); mode 0600 or 0400, refused when others may read it.",
    )
    interface: str = Field(
        default="wlan0", pattern=r"^[A-Za-z0-9._@:-]{1,15}$", description="The Wi-Fi device."
    )
    nmcli_path: str = Field(default="nmcli", description="The nmcli program (a name or a path).")
    join_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Try the configured networks this long before the master raises its AP.",
    )
    client_join_timeout_s: float | None = Field(
        default=None,
        gt=0,
        le=7200,
        description="A non-master node that sees neither a network nor the master's AP this "
        "long raises its own AP; None: twice join_timeout_s (the master's AP is up by then).",
    )
    mesh_retry_s: float = Field(
        default=120.0,
        gt=0,
        le=86_400,
        description="On an access point, look for the configured networks this often.",
    )
    probe_timeout_s: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="A hosting node takes its AP down this long at most to scan for the mesh.",
    )
    poll_interval_s: float = Field(
        default=5.0, gt=0, le=600, description="Read the link and act this often."
    )
    command_timeout_s: float = Field(
        default=30.0, gt=0, le=600, description="One nmcli call is killed after this long."
    )

    @model_validator(mode="after")
    def _client_waits_longer(self) -> NetworkSettings:
        if self.client_join_timeout_s is not None and self.client_join_timeout_s < (
            self.join_timeout_s
        ):
            raise ValueError(
                f"network.client_join_timeout_s {self.client_join_timeout_s:g} < "
                f"join_timeout_s {self.join_timeout_s:g}: the other cameras must wait longer "
                "than the master, or they raise their own APs before the master's exists"
            )
        return self

    @property
    def client_timeout_s(self) -> float:
        """How long a non-master node waits for a network or the master's AP."""
        return self.client_join_timeout_s or 2 * self.join_timeout_s

    def ap_ssid(self, cam_id: str) -> str:
        """The access point a node with ``cam_id`` raises."""
        return self.ap_ssid_template.replace("{cam_id}", cam_id)
