"""The network part of ``GET /api/v1/status`` (re-exported by ``node_agent.schemas``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from node_agent.wirebase import Answer

# An interface name as Linux allows it (IFNAMSIZ is 16 with the NUL).
IFACE_PATTERN = r"^[A-Za-z0-9._@:-]{1,15}$"
MAX_INTERFACES = 32


class NetworkMode(StrEnum):
    """How the node reaches the fleet. mesh and ap_client are reported by a later mesh/AP
    switcher; today's reader says ap_host, wired, wifi or none."""

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
