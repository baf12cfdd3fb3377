"""The coordinator's ``/metrics``: fleet gauges from the caches, never a call to a node."""

from __future__ import annotations

import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from app.fleet.state import FleetState
from app.fleet.wire import RecorderState


class FleetCollector(Collector):
    """Renders the cached fleet state on each scrape."""

    def __init__(self, state: FleetState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        now = time.time_ns()
        # A scrape runs in a worker thread while the loop may add or remove nodes: read
        # copies, and tolerate a node that is gone by the time its row is rendered.
        ids = sorted(list(self.state.addresses))
        online = [n for n in ids if self.state.online(n, now)]
        total = GaugeMetricFamily("camfleet_nodes", "Nodes that have joined")
        total.add_metric([], len(ids))
        yield total
        on = GaugeMetricFamily("camfleet_nodes_online", "Nodes with a recent successful contact")
        on.add_metric([], len(online))
        yield on

        labels = ["node_id", "cam_id"]
        up = GaugeMetricFamily("camfleet_node_up", "1 when the node is online", labels=labels)
        rec = GaugeMetricFamily(
            "camfleet_node_recording", "1 while the node records or is armed", labels=labels
        )
        dropped = GaugeMetricFamily(
            "camfleet_node_dropped_frames", "Dropped frames in the current recording", labels=labels
        )
        free = GaugeMetricFamily(
            "camfleet_node_disk_free_bytes",
            "Free bytes on the node's recordings disk",
            labels=labels,
        )
        offset = GaugeMetricFamily(
            "camfleet_node_clock_offset_seconds",
            "The node's clock minus its reference (from chrony)",
            labels=labels,
        )
        for node_id in ids:
            lv = [node_id, self.state.cam_ids.get(node_id, "")]
            up.add_metric(lv, 1 if node_id in online else 0)
            entry = self.state.cache.get(node_id)
            status = entry.status if entry is not None else None
            if status is None:
                continue
            busy = status.recorder.state in (RecorderState.recording, RecorderState.armed)
            rec.add_metric(lv, 1 if busy else 0)
            dropped.add_metric(lv, status.recorder.dropped_frames)
            free.add_metric(lv, status.disk.free_bytes)
            if status.clock.offset_ns is not None:
                offset.add_metric(lv, status.clock.offset_ns / 1e9)
        yield from (up, rec, dropped, free, offset)
