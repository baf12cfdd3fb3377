"""The coordinator's ``discovery:`` settings (mDNS advertisement of ``_camfleet._tcp``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from common.settings import IpAddressText


class DiscoverySettings(BaseModel):
    """Whether and how the coordinator advertises itself to agents without coordinator_url."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=False,
        description="Advertise _camfleet._tcp over mDNS so agents without coordinator_url "
        "find this coordinator (they join only after it proves it holds the fleet token).",
    )
    instance_name: str | None = Field(
        default=None,
        pattern=r"^[\x20-\x7e]{1,63}$",
        description="The mDNS instance name; default 'camfleet coordinator on <hostname>'.",
    )
    addresses: list[IpAddressText] = Field(
        default_factory=list,
        max_length=32,
        description="The IP addresses put in the advertisement; empty: every non-loopback "
        "address of the machine (loopback too when it has no other).",
    )
    interfaces: list[IpAddressText] = Field(
        default_factory=list,
        max_length=32,
        description="The interface addresses mDNS is sent and answered on; empty: all.",
    )
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="The port advertised; default the coordinator's own port.",
    )
    fleet_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9-]{1,32}$",
        description="The fleet's public id in the advertisement; default a short HMAC of "
        "the fleet token (the token cannot be recovered from it). Agents must agree.",
    )
