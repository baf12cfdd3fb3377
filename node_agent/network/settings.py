"""Network settings (``network:`` in the agent's YAML, ``CAMFLEET_NETWORK__*`` in the env)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class NetworkSettings(BaseModel):
    """Where the network mode is read from."""

    model_config = ConfigDict(extra="forbid")

    ap_host: bool = Field(
        default=False, description="This node hosts the field's access point (reported as ap_host)."
    )
    sys_root: Path = Field(
        default=Path("/"),
        description="The root under which sys/class/net, proc/net/route and "
        "etc/NetworkManager/system-connections are read (tests point it at a fake tree).",
    )
