"""Everything the coordinator builds once per app: settings, database, fleet, metrics."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram
from sqlalchemy import Engine
from sqlmodel import Session

from app.fleet.client import AgentClient, NodeAddress
from app.fleet.poller import StatusPoller
from app.fleet.state import FleetState
from app.fleet.wire import Manifest
from app.settings import CoordinatorSettings

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Fleet:
    """The coordinator's long-lived parts, handed to services."""

    settings: CoordinatorSettings
    engine: Engine
    client: AgentClient
    state: FleetState
    poller: StatusPoller
    registry: CollectorRegistry
    command_latency: Histogram

    def address(self, node_id: str) -> NodeAddress | None:
        """Where to reach a node, if it ever joined."""
        return self.state.addresses.get(node_id)


def build_fleet(settings: CoordinatorSettings, engine: Engine) -> Fleet:
    """Wire the parts together (nothing started yet)."""
    registry = CollectorRegistry(auto_describe=False)
    latency = Histogram(
        "camfleet_command_latency_seconds",
        "Round trip of coordinator-to-node calls",
        ["command"],
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )
    client = AgentClient(
        settings.command_timeout_s,
        on_latency=lambda cmd, s: latency.labels(cmd).observe(s),
    )
    state = FleetState(offline_after_s=settings.offline_after_s)

    def ingest(node_id: str, manifests: list[Manifest]) -> None:
        from app.recordings import service as recording_service

        with Session(engine, expire_on_commit=False) as db:
            recording_service.ingest(db, node_id, manifests)

    poller = StatusPoller(
        client, state, settings.poll_interval_s, settings.manifest_sync_interval_s, ingest
    )
    return Fleet(settings, engine, client, state, poller, registry, latency)
