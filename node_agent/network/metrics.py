"""Network metrics for the agent's ``/metrics``: the Wi-Fi link and the mesh / AP manager.

``camfleet_network_mode`` itself is in the agent's main collector (it is there with the
manager off too)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node_agent.network.schemas import ManagerPhase, NetworkStatus


class NetworkCollector(Collector):
    """Signal, SSID, the manager's phase, time in it, actions and errors."""

    def __init__(
        self,
        status: Callable[[], NetworkStatus],
        node_id: str,
        cam_id: str,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._status = status
        self._ids = [node_id, cam_id]
        self._wall = wall

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        s = self._status()
        labels = ["node", "cam_id"]
        if s.signal is not None:  # unknown (hosting, down): no series
            signal = GaugeMetricFamily(
                "camfleet_network_signal_ratio",
                "Signal of the Wi-Fi network in use (0-1, nmcli's SIGNAL / 100)",
                labels=labels,
            )
            signal.add_metric(self._ids, s.signal / 100)
            yield signal
        if s.ssid is not None:
            info = GaugeMetricFamily(
                "camfleet_network_link_info",
                "The Wi-Fi network in use or hosted (always 1)",
                labels=[*labels, "mode", "ssid"],
            )
            info.add_metric([*self._ids, s.mode.value, s.ssid], 1)
            yield info
        m = s.manager
        if m is None:
            return
        phase = GaugeMetricFamily(
            "camfleet_network_manager_phase",
            "1 for what the mesh / AP manager is doing: seeking, mesh, ap_host, ap_client, probing",
            labels=[*labels, "phase"],
        )
        for p in ManagerPhase:
            phase.add_metric([*self._ids, p.value], 1 if m.phase == p else 0)
        yield phase
        if m.since is not None:
            age = GaugeMetricFamily(
                "camfleet_network_manager_phase_seconds",
                "Seconds since the manager entered its phase",
                labels=labels,
            )
            age.add_metric(self._ids, max(0.0, self._wall() - m.since.timestamp()))
            yield age
        actions = CounterMetricFamily(
            "camfleet_network_manager_actions",
            "Scans, joins and AP changes carried out since the agent started",
            labels=labels,
        )
        actions.add_metric(self._ids, m.actions)
        yield actions
        errors = CounterMetricFamily(
            "camfleet_network_manager_errors",
            "nmcli calls that failed since the agent started",
            labels=labels,
        )
        errors.add_metric(self._ids, m.errors)
        yield errors
