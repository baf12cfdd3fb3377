"""The coordinator's clock flags and the agent's camfleet_clock_* metrics, from statuses
built out of the golden chronyc files (the real daemons' output)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from app.fleet.wire import NodeStatus
from app.nodes.clockflags import frame_flag, with_clock_flags
from app.nodes.models import NodePublic
from node_agent.schemas import (
    ClockStatus,
    Codec,
    DiskStatus,
    Position,
    RecorderState,
    RecorderStatus,
)
from node_agent.telemetry.chrony import ClockRole, parse_report
from node_agent.telemetry.clock_metrics import clock_metrics
from node_agent.telemetry.clock_status import status_from_report

FIXTURES = Path(__file__).parent / "fixtures" / "chrony"
READ_AT_NS = 1_796_149_850_000_000_000


def clock(name: str, role: ClockRole) -> ClockStatus:
    text = "".join(
        (FIXTURES / f"{name}_{r}.csv").read_text() for r in ("tracking", "sources", "sourcestats")
    )
    return status_from_report(parse_report(text), READ_AT_NS, role)


def node(node_id: str, address: str, c: ClockStatus, fps: float = 30.0) -> NodePublic:
    recorder = RecorderStatus(
        state=RecorderState.idle,
        codec=Codec.h264,
        width=320,
        height=240,
        fps=fps,
        bitrate_bps=1_000_000,
        profile="p",
        camera="synthetic",
    )
    status = NodeStatus(
        node_id=node_id,
        cam_id=node_id.upper(),
        position=Position.other,
        hostname="h",
        version="9",
        time_ns=READ_AT_NS,
        uptime_s=1.0,
        recorder=recorder,
        clock=c,
        disk=DiskStatus(path="/", total_bytes=1, free_bytes=1, minutes_left=1.0),
        coordinator="joined",
    )
    return NodePublic(
        node_id=node_id,
        cam_id=node_id.upper(),
        position="other",
        address=address,
        version="9",
        hostname="h",
        approved=True,
        online=True,
        last_heartbeat=None,
        joined_at=None,
        last_contact=None,
        last_error=None,
        rtt_ms=None,
        status=status,
    )


MASTER = ClockRole(role="master")
CLIENT = ClockRole(role="client", master="127.0.0.1")


def flags(*nodes: NodePublic) -> dict[str, list[str]]:
    return {n.node_id: n.clock_flags for n in with_clock_flags(list(nodes))}


def test_a_client_following_the_master_is_not_flagged() -> None:
    out = flags(
        node("cam-c", "127.0.0.1:8081", clock("master_synced", MASTER)),
        node("cam-l", "127.0.0.1:8082", clock("client_synced", CLIENT)),
    )
    assert out == {"cam-c": [], "cam-l": []}


def test_a_client_whose_master_died_is_flagged() -> None:
    out = flags(
        node("cam-c", "127.0.0.1:8081", clock("master_synced", MASTER)),
        node("cam-l", "127.0.0.1:8082", clock("client_master_killed", CLIENT)),
    )
    assert out["cam-l"] == [
        "not following the master: chrony's source is none (expected 127.0.0.1; unsynchronized)"
    ]


def test_a_client_following_another_server_than_the_master_node() -> None:
    # chrony follows 127.0.0.1 and the agent's configured master is 127.0.0.1, but the node
    # that reports the master role joined from 10.42.0.3: two masters, one fleet.
    out = flags(
        node("cam-c", "10.42.0.3:8081", clock("master_synced", MASTER)),
        node("cam-l", "10.42.0.4:8081", clock("client_synced", CLIENT)),
    )
    assert out["cam-l"] == [
        "not following the master: chrony's source is 127.0.0.1 "
        "(expected 10.42.0.3; the master node is at 10.42.0.3)"
    ]


def test_a_bound_over_one_frame_period_is_flagged() -> None:
    c = clock("client_synced", CLIENT).model_copy(update={"error_bound_ns": 9_000_000})
    fast, slow = node("n", "h:1", c, fps=120).status, node("n", "h:1", c, fps=100).status
    assert fast is not None and slow is not None
    assert frame_flag(fast) == "clock bound 9.0 ms exceeds one frame period 8.3 ms"
    assert frame_flag(slow) is None


def test_the_metrics_carry_every_figure() -> None:
    c = clock("client_synced", CLIENT)

    class One(Collector):
        def collect(self) -> Iterator[Metric]:
            yield from clock_metrics(c, ["node", "cam_id"], ["cam-l", "CAM_L"])

    registry = CollectorRegistry()
    registry.register(One())
    text = generate_latest(registry).decode()
    values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert c.error_bound_ns is not None
    assert values["camfleet_clock_error_bound_seconds"] == c.error_bound_ns / 1e9
    assert c.offset_ns is not None
    assert values["camfleet_clock_offset_seconds"] == c.offset_ns / 1e9
    assert values["camfleet_clock_synchronized"] == 1
    assert "camfleet_chrony_offset_seconds" not in values  # renamed to camfleet_clock_*
    assert values["camfleet_clock_sources_reachable"] == 1
    assert values["camfleet_clock_stratum"] == 9 and values["camfleet_clock_follows_master"] == 1
    for name in (
        "rms_offset_seconds",
        "frequency_ppm",
        "skew_ppm",
        "root_delay_seconds",
        "root_dispersion_seconds",
        "last_update_age_seconds",
    ):
        assert f"camfleet_clock_{name}" in values
    lost = clock("client_master_killed", CLIENT)
    assert lost.synchronized is False and sum(s.reach != 0 for s in lost.sources) == 0
