"""The coordinator link's series: its state, how it was found, joins, rejected candidates."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from node_agent.discovery.schemas import LinkStatus

STATES = ("joined", "retrying", "searching")


def link_metrics(link: LinkStatus | None, labels: list[str], ids: list[str]) -> Iterator[Metric]:
    """Nothing without a link (no coordinator configured or discovered)."""
    if link is None:
        return
    state = GaugeMetricFamily(
        "camfleet_coordinator_link_state",
        "1 for the link's state (joined, retrying, searching), with how the coordinator "
        "was found (configured or discovered)",
        labels=[*labels, "state", "found_by"],
    )
    for name in STATES:
        state.add_metric([*ids, name, link.found_by], 1 if link.state == name else 0)
    yield state
    joins = CounterMetricFamily(
        "camfleet_coordinator_joins", "Joins and heartbeats the coordinator accepted", labels=labels
    )
    joins.add_metric(ids, link.joins_total)
    yield joins
    changes = CounterMetricFamily(
        "camfleet_node_address_changes",
        "Changes of the node's own addresses seen (each re-joins at once)",
        labels=labels,
    )
    changes.add_metric(ids, link.address_changes)
    yield changes
    rejected = GaugeMetricFamily(
        "camfleet_discovery_rejected_candidates",
        "Advertised coordinators set aside now (failed the proof, or unreachable)",
        labels=labels,
    )
    rejected.add_metric(ids, len(link.rejected))
    yield rejected
