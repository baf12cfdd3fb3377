"""The live view's metrics: frames served, viewers, and whether the watchdog turned it off."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node_agent.liveview.schemas import LiveViewStatus


class LiveViewCollector(Collector):
    """Renders the live view's status at scrape time."""

    def __init__(self, status: Callable[[], LiveViewStatus], node_id: str, cam_id: str) -> None:
        self._status = status
        self._ids = [node_id, cam_id]

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        s = self._status()
        labels = ["node", "cam_id"]
        served = CounterMetricFamily(
            "camfleet_liveview_frames_served", "Live view frames sent to viewers", labels=labels
        )
        served.add_metric(self._ids, s.frames_served)
        yield served
        clients = GaugeMetricFamily(
            "camfleet_liveview_clients", "Live view viewers now", labels=labels
        )
        clients.add_metric(self._ids, s.clients)
        yield clients
        cooling = GaugeMetricFamily(
            "camfleet_liveview_cooling",
            "1 while the watchdog keeps the live view off",
            labels=labels,
        )
        cooling.add_metric(self._ids, 1 if s.state == "cooling" else 0)
        yield cooling
