"""The coordinator link as the settings ask: configured, discovered, or none."""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from node_agent.discovery.service import Finder
from node_agent.link import CoordinatorLink
from node_agent.link_schemas import JoinRequest
from node_agent.settings import AgentSettings


def build_link(
    settings: AgentSettings, make_request: Callable[[], JoinRequest], key: Ed25519PrivateKey
) -> CoordinatorLink | None:
    """A link to ``coordinator_url`` (the fleet token as a bearer), else, with discovery
    on, to the coordinator found over mDNS (mutual proof); None without a fleet token."""
    if settings.fleet_token is None:
        return None
    token = settings.fleet_token.get_secret_value()
    finder = None
    if not settings.coordinator_url:
        if not settings.discovery.enabled:
            return None
        finder = Finder(settings.discovery, token)
    return CoordinatorLink(
        settings.coordinator_url or None,
        token,
        make_request,
        settings.heartbeat_interval_s,
        settings.join_backoff_max_s,
        key,
        finder=finder,
        watch_interval_s=settings.discovery.address_watch_interval_s,
    )
