"""Everything the coordinator builds once per app: settings, database, fleet, metrics."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy import Engine
from sqlmodel import Session

from app.events.service import LiveFleet
from app.fleet.client import AgentClient, NodeAddress
from app.fleet.fanout import Fanout
from app.fleet.poller import StatusPoller
from app.fleet.state import FleetState
from app.fleet.transport import Transport
from app.fleet.watch import FleetWatch, WatchConfig
from app.fleet.wire import Manifest
from app.metrics import SessionSnapshot
from app.nodes.identity import Challenges
from app.nodes.models import Node
from app.notify.service import FleetAlerts
from app.settings import CoordinatorSettings
from app.store import Store, pool_capacity

LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Fleet:
    """The coordinator's long-lived parts, handed to services."""

    settings: CoordinatorSettings
    store: Store
    client: AgentClient
    fanout: Fanout
    state: FleetState
    poller: StatusPoller
    registry: CollectorRegistry
    command_latency: Histogram
    join_refused: Counter
    challenges: Challenges
    # The mutual handshakes of discovered coordinators (docs/discovery.md): a store of
    # their own, so a flood of unauthenticated handshakes never evicts a bearer challenge.
    handshakes: Challenges = field(default_factory=Challenges)
    # The registry as last written by this coordinator (it is the only writer): pages and
    # GET /api/v1/nodes read it without waiting for a database thread.
    nodes: dict[str, Node] = field(default_factory=dict)
    # How many commands are under way per session; reconciliation leaves those be.
    busy_sessions: Tally[str] = field(default_factory=Tally)
    # Sessions found unfinished when this coordinator started.
    restarted_sessions: set[str] = field(default_factory=set)
    # Live events (GET /api/v1/events); set by create_app.
    live: LiveFleet | None = None
    # Every node's status stream (None when watch_enabled is off).
    watch: FleetWatch | None = None
    # The fleet's events as notifications; set by create_app.
    alerts: FleetAlerts | None = None
    # Sessions by state and the last skew, read by GET /metrics before it renders.
    sessions_snapshot: SessionSnapshot = field(default_factory=SessionSnapshot)

    @contextmanager
    def commanding(self, session_id: str) -> Iterator[None]:
        """Mark ``session_id`` as being commanded for the duration of the block."""
        self.busy_sessions[session_id] += 1
        try:
            yield
        finally:
            self.busy_sessions[session_id] -= 1
            if self.busy_sessions[session_id] <= 0:
                del self.busy_sessions[session_id]

    def address(self, node_id: str) -> NodeAddress | None:
        """Where to reach an approved node, if it ever joined."""
        return self.state.addresses.get(node_id)


def build_fleet(
    settings: CoordinatorSettings, engine: Engine, transport: Transport | None = None
) -> Fleet:
    """Wire the parts together (nothing started yet)."""
    registry = CollectorRegistry(auto_describe=False)
    latency = Histogram(
        "camfleet_command_latency_seconds",
        "Round trip of coordinator-to-node calls",
        ["command"],
        buckets=LATENCY_BUCKETS_S,
        registry=registry,
    )
    results = Counter(
        "camfleet_command_results",
        "Coordinator-to-node calls by command and outcome (ok, refused, failed, unreachable)",
        ["command", "outcome"],
        registry=registry,
    )
    refused = Counter(
        "camfleet_join_refused",
        "Joins and heartbeats refused, by reason (a known node that could not prove itself, ...)",
        ["reason"],
        registry=registry,
    )
    store = Store(engine, pool_capacity(engine))
    client = AgentClient(settings.command_timeout_s, transport)
    state = FleetState(offline_after_s=settings.offline_after_s)
    fanout = Fanout(
        client,
        state,
        per_node_limit=settings.per_node_calls,
        queue_limit=settings.per_node_queue,
        slow_after_s=settings.slow_call_s,
        on_latency=lambda cmd, s: latency.labels(cmd).observe(s),
        on_result=lambda cmd, outcome: results.labels(cmd, outcome).inc(),
    )

    async def ingest(node_id: str, manifests: list[Manifest]) -> None:
        from app.recordings import service as recording_service
        from app.sessions.skew import refresh_ended

        def tx(db: Session) -> None:
            refresh_ended(db, recording_service.ingest(db, node_id, manifests))

        await store.run(tx)

    poller = StatusPoller(
        fanout,
        state,
        settings.poll_interval_s,
        settings.manifest_sync_interval_s,
        ingest,
        busy_interval_s=settings.busy_poll_interval_s,
    )
    fanout.on_changed = poller.refresh_soon
    watch = None
    if settings.watch_enabled:
        watch = FleetWatch(
            fanout,
            state,
            WatchConfig(
                heartbeat_timeout_s=settings.watch_heartbeat_timeout_s,
                probe_timeout_s=settings.watch_probe_timeout_s,
                backoff_max_s=settings.watch_backoff_max_s,
                max_events_per_s=settings.watch_max_events_per_s,
            ),
        )
        poller.watched = watch.watched
        poller.watched_interval_s = max(settings.watched_poll_interval_s, settings.poll_interval_s)
    return Fleet(
        settings,
        store,
        client,
        fanout,
        state,
        poller,
        registry,
        latency,
        refused,
        Challenges(),
        watch=watch,
    )
