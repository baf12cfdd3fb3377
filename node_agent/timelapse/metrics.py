"""Timelapse metrics for the agent's ``/metrics``: a collector over ``Timelapse.status``."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node_agent.timelapse.schemas import DiskState, TimelapseStatus


class TimelapseCollector(Collector):
    """Renders one TimelapseStatus as Prometheus metrics, read at scrape time."""

    def __init__(self, status: Callable[[], TimelapseStatus], node_id: str, cam_id: str) -> None:
        self._status = status
        self._ids = [node_id, cam_id]

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        s = self._status()
        labels = ["node", "cam_id"]
        ids = self._ids

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            g = GaugeMetricFamily(name, doc, labels=labels)
            g.add_metric(ids, value)
            return g

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            c = CounterMetricFamily(name, doc, labels=labels)
            c.add_metric(ids, value)
            return c

        yield gauge("camfleet_timelapse_running", "1 while a timelapse runs", 1 if s.running else 0)
        yield gauge("camfleet_timelapse_interval_seconds", "Capture interval", s.interval_s)
        yield gauge(
            "camfleet_timelapse_photos_today",
            "Stills written today (local date), this run or not",
            s.captures_today,
        )
        expected = expected_photos(s)
        if expected is not None:  # no daily window: absent, not zero
            yield gauge(
                "camfleet_timelapse_photos_expected_today",
                "Stills today's capture window and interval call for",
                expected,
            )
        yield counter(
            "camfleet_timelapse_captures",
            "Stills written since the agent started",
            s.captures_total,
        )
        skipped = CounterMetricFamily(
            "camfleet_timelapse_skipped",
            "Slots without a new still: that second's still existed, or the disk was full",
            labels=[*labels, "reason"],
        )
        skipped.add_metric([*ids, "exists"], s.skipped)
        skipped.add_metric([*ids, "disk_full"], s.skipped_disk_full)
        yield skipped
        yield counter(
            "camfleet_timelapse_missed",
            "Slots that passed while the camera failed or a capture overran",
            s.missed,
        )
        yield counter("camfleet_timelapse_failures", "Camera and storage failures", s.failures)
        yield gauge(
            "camfleet_timelapse_consecutive_failures",
            "Camera failures since the last still (drives the reconnect backoff)",
            s.consecutive_failures,
        )
        if s.last_capture_ns is not None:
            yield gauge(
                "camfleet_timelapse_last_capture_timestamp_seconds",
                "When the last still was taken (UTC)",
                s.last_capture_ns / 1e9,
            )
        if s.last_capture_ms is not None:
            yield gauge(
                "camfleet_timelapse_last_capture_duration_seconds",
                "How long the last still took (camera, JPEG, write)",
                s.last_capture_ms / 1000,
            )
        if s.disk is not None:
            yield gauge(
                "camfleet_timelapse_disk_used_ratio",
                "Disk use of the stills folder's filesystem (0-1)",
                s.disk.used_percent / 100,
            )
            yield gauge(
                "camfleet_timelapse_disk_full",
                "1 while stills are refused for disk use at or above the stop threshold",
                1 if s.disk.state == DiskState.full else 0,
            )
        yield counter(
            "camfleet_timelapse_day_folders_deleted",
            "Day folders deleted by clean-up",
            s.deleted_days,
        )


def expected_photos(s: TimelapseStatus) -> float | None:
    """Today's expected stills from the daily cycle's plan (``cycle.today``), or None.

    None without a capture window (no cycle) or before the cycle has planned the day:
    the series is then absent rather than a made-up zero. A planned day with no window
    (polar night) expects 0, and says so.
    """
    today = s.cycle.today if s.cycle is not None else None
    return None if today is None else float(today.expected_photos)
