"""The agent's ``discovery:`` settings: used when ``coordinator_url`` is not set."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from common.settings import IpAddressText


class AgentDiscoverySettings(BaseModel):
    """How an agent without coordinator_url finds its coordinator (docs/discovery.md)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True,
        description="Without coordinator_url (and with fleet_token), browse _camfleet._tcp "
        "over mDNS and join the coordinator of this fleet that proves it holds the token.",
    )
    fleet_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9-]{1,32}$",
        description="The fleet id to look for; default derived from fleet_token, as the "
        "coordinator derives it.",
    )
    interfaces: list[IpAddressText] = Field(
        default_factory=list,
        max_length=32,
        description="The interface addresses mDNS is browsed on; empty: all.",
    )
    require_same_address: bool = Field(
        default=True,
        description="Refuse a coordinator that saw the handshake come from an address other "
        "than this node's own end of the connection (a relay in between).",
    )
    reject_for_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="A candidate that failed the proof is not tried again for this long.",
    )
    address_watch_interval_s: float = Field(
        default=1.0,
        gt=0,
        le=600,
        description="How often the node's own addresses are read: a change re-joins at once "
        "(0.x s), so the coordinator follows the node. Also watched with coordinator_url.",
    )
