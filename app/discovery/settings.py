"""The coordinator's ``discovery:`` settings (mDNS advertisement of ``_camfleet._tcp``)."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, field_validator


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
    addresses: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="The IP addresses put in the advertisement; empty: every non-loopback "
        "address of the machine (loopback too when it has no other).",
    )
    interfaces: list[str] = Field(
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

    @field_validator("addresses", "interfaces")
    @classmethod
    def _ips(cls, value: list[str]) -> list[str]:
        for text in value:
            try:
                ipaddress.ip_address(text)
            except ValueError as err:
                raise ValueError(f"{text!r} is not an IP address") from err
        return value
