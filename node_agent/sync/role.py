"""This node's clock role, resolved from ``sync:``, and what a client compares its source to."""

from __future__ import annotations

import socket
from typing import Literal

from node_agent.sync.settings import SyncSettings
from node_agent.telemetry.clock_status import ClockRole

Role = Literal["master", "client", "none"]


def resolve_role(sync: SyncSettings, cam_id: str) -> Role:
    """``auto``: master when this camera is ``sync.master_cam_id``, else client."""
    if sync.role == "auto":
        return "master" if cam_id == sync.master_cam_id else "client"
    return sync.role


def master_addresses(host: str) -> frozenset[str]:
    """The addresses the master's host name resolves to (empty when it does not resolve
    now: an mDNS name before the network is up). Blocks on the resolver: call it off the
    event loop."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_UDP)
    except (OSError, UnicodeError):
        return frozenset()
    return frozenset(str(info[4][0]) for info in infos)


def clock_role(sync: SyncSettings, cam_id: str, resolve: bool = True) -> ClockRole:
    """The ClockRole the clock monitor reports; a client's master resolved when asked."""
    role = resolve_role(sync, cam_id)
    if role != "client":
        return ClockRole(role=role)
    addrs = master_addresses(sync.master_host) if resolve else frozenset()
    return ClockRole(role=role, master=sync.master_host, master_addresses=addrs)
