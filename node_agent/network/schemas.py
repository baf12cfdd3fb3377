"""The network part of ``GET /api/v1/status`` (re-exported by ``node_agent.schemas``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from node_agent.wirebase import Answer

# An interface name as Linux allows it (IFNAMSIZ is 16 with the NUL).
IFACE_PATTERN = r"^[A-Za-z0-9._@:-]{1,15}$"
MAX_INTERFACES = 32
# An IPv4 or IPv6 address with an optional prefix length, as nmcli prints it.
ADDRESS_PATTERN = r"^[0-9A-Fa-f.:]{2,45}(/[0-9]{1,3})?$"


class NetworkMode(StrEnum):
    """How the node reaches the fleet: mesh (a configured network), ap_host, ap_client (the
    master's AP) from the network manager (``network.manage``); wired, wifi, none (and
    ap_host) from the reader."""

    mesh = "mesh"
    ap_host = "ap_host"  # this node hosts the field's access point
    ap_client = "ap_client"  # joined another node's access point
    wired = "wired"
    wifi = "wifi"
    none = "none"


class NetworkInterface(Answer):
    """One network interface (loopback left out)."""

    name: str = Field(pattern=IFACE_PATTERN)
    kind: Literal["wired", "wifi"]
    up: bool = Field(description="operstate is 'up' (or 'unknown' with a carrier).")


class ManagerPhase(StrEnum):
    """What the network manager is doing (``node_agent.network.plan.Phase``)."""

    seeking = "seeking"
    mesh = "mesh"
    ap_host = "ap_host"
    ap_client = "ap_client"
    probing = "probing"


class NetworkManagerStatus(Answer):
    """The mesh / access-point manager's state (present when ``network.manage``)."""

    phase: ManagerPhase
    since: datetime | None = Field(default=None, description="When this phase began (UTC).")
    target: str | None = Field(
        default=None, max_length=32, description="The SSID it is trying or on."
    )
    last_action: str | None = Field(
        default=None, max_length=80, description="e.g. 'raise_ap SOCCER_CAM_C'."
    )
    last_action_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=300)
    last_error_at: datetime | None = None
    actions: int = Field(default=0, ge=0, description="Actions carried out since start.")
    errors: int = Field(default=0, ge=0, description="Actions or reads that failed.")


class NetworkStatus(Answer):
    """What the node's network looks like now."""

    mode: NetworkMode
    interface: str | None = Field(
        default=None,
        pattern=IFACE_PATTERN,
        description="The interface the mode is about: the default route's, else the first up.",
    )
    ap: bool = Field(
        default=False,
        description="The node hosts an access point (network.ap_host, or a NetworkManager "
        "connection in AP mode on an up wireless interface).",
    )
    interfaces: list[NetworkInterface] = Field(default_factory=list, max_length=MAX_INTERFACES)
    error: str | None = Field(default=None, max_length=300, description="Why it could not be read.")
    ssid: str | None = Field(
        default=None, max_length=32, description="The Wi-Fi network in use or hosted."
    )
    signal: int | None = Field(default=None, ge=0, le=100, description="Its signal, 0-100.")
    address: str | None = Field(
        default=None, pattern=ADDRESS_PATTERN, description="The Wi-Fi device's IPv4 address."
    )
    manager: NetworkManagerStatus | None = Field(
        default=None, description="The mesh / AP manager (network.manage); None when off."
    )
