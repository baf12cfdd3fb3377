"""The agent's ``/metrics``: a collector over the recorder, clock and disk, read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from node_agent.discovery.metrics import link_metrics
from node_agent.network.schemas import NetworkMode
from node_agent.power.metrics import power_metrics
from node_agent.schemas import DiskLevel, DiskStatus, NodeStatus, RecorderState
from node_agent.telemetry.clock_metrics import clock_metrics
from node_agent.telemetry.reading import Reading


class AgentCollector(Collector):
    """Renders one NodeStatus as Prometheus metrics."""

    def __init__(
        self,
        status: Callable[[], NodeStatus],
        readings: Callable[[], list[Reading[Any]]] = list,
    ) -> None:
        self._status = status
        self._readings = readings  # each telemetry collector's result, for collector_success

    def collect(self) -> Iterator[Metric]:
        """Called by prometheus_client on every scrape."""
        s = self._status()
        labels = ["node", "cam_id"]
        ids = [s.node_id, s.cam_id]

        info = GaugeMetricFamily(
            "camfleet_build_info", "The agent's version (always 1)", labels=[*labels, "version"]
        )
        info.add_metric([*ids, s.version], 1)
        yield info
        uptime = GaugeMetricFamily(
            "camfleet_agent_uptime_seconds", "Seconds since the agent started", labels=labels
        )
        uptime.add_metric(ids, s.uptime_s)
        yield uptime
        if s.cpu_temp_c is not None:  # no sensor: no series (absent, not zero)
            temp = GaugeMetricFamily(
                "camfleet_thermal_cpu_temperature_celsius",
                "CPU temperature (what the temperature gate reads)",
                labels=labels,
            )
            temp.add_metric(ids, s.cpu_temp_c)
            yield temp
        if s.network is not None:
            mode = GaugeMetricFamily(
                "camfleet_network_mode",
                "1 for the network mode the node is in now: mesh, ap_host, ap_client, wired, "
                "wifi or none",
                labels=[*labels, "mode"],
            )
            for m in NetworkMode:
                mode.add_metric([*ids, m.value], 1 if s.network.mode == m else 0)
            yield mode

        state = GaugeMetricFamily(
            "camfleet_recorder_state",
            "1 for the recorder's current state",
            labels=[*labels, "state"],
        )
        for st in RecorderState:
            state.add_metric([*ids, st.value], 1 if s.recorder.state == st else 0)
        yield state

        profile = GaugeMetricFamily(
            "camfleet_recorder_profile_info",
            "The profile recordings use now (1), with its codec and size",
            labels=[*labels, "profile", "codec", "width", "height"],
        )
        r = s.recorder
        profile.add_metric([*ids, r.profile, r.codec.value, str(r.width), str(r.height)], 1)
        yield profile
        fallbacks = GaugeMetricFamily(
            "camfleet_recorder_profile_fallbacks",
            "How many better profiles were left (encoder missing, or frame rate not held)",
            labels=labels,
        )
        fallbacks.add_metric(ids, len(r.profile_notes))
        yield fallbacks
        bitrate = GaugeMetricFamily(
            "camfleet_recorder_bitrate_bytes_per_second",
            "The bitrate of the profile in use (after clamping), in bytes per second",
            labels=labels,
        )
        bitrate.add_metric(ids, r.bitrate_bps / 8)
        yield bitrate

        rate = GaugeMetricFamily(
            "camfleet_recorder_frame_rate_fps",
            "The frame rate recordings use (one frame period is its inverse)",
            labels=labels,
        )
        rate.add_metric(ids, r.fps)
        yield rate

        frames = CounterMetricFamily(
            "camfleet_recorder_frames", "Frames written in the current recording", labels=labels
        )
        frames.add_metric(ids, s.recorder.frames)
        yield frames
        dropped = CounterMetricFamily(
            "camfleet_recorder_dropped_frames",
            "Frames dropped in the current recording",
            labels=labels,
        )
        dropped.add_metric(ids, s.recorder.dropped_frames)
        yield dropped
        fps = GaugeMetricFamily(
            "camfleet_recorder_encode_fps", "Frames encoded per second", labels=labels
        )
        fps.add_metric(ids, s.recorder.encode_fps)
        yield fps

        free = GaugeMetricFamily(
            "camfleet_disk_free_bytes", "Free bytes on the recordings disk", labels=labels
        )
        free.add_metric(ids, s.disk.free_bytes)
        yield free
        mins = GaugeMetricFamily(
            "camfleet_disk_recording_seconds_left",
            "Seconds of video that still fit at the configured bitrate",
            labels=labels,
        )
        mins.add_metric(ids, s.disk.minutes_left * 60)
        yield mins
        yield from disk_metrics(s.disk, labels, ids)
        yield from power_metrics(s.power, labels, ids)
        yield from link_metrics(s.coordinator_link, labels, ids)

        yield from clock_metrics(s.clock, labels, ids)
        up = GaugeMetricFamily(
            "camfleet_collector_success",
            "1 when the collector read its source on the last attempt",
            labels=[*labels, "collector"],
        )
        for reading in self._readings():
            up.add_metric([*ids, reading.collector], 1 if reading.ok else 0)
        yield up


def disk_metrics(d: DiskStatus, labels: list[str], ids: list[str]) -> Iterator[Metric]:
    """The housekeeper's figures: free share, footage not yet offloaded, level and alarm."""
    gauges: list[tuple[str, str, float]] = [
        ("camfleet_disk_total_bytes", "Size of the recordings disk", d.total_bytes),
        (
            "camfleet_disk_free_ratio",
            "Free share of the recordings disk (0-1)",
            d.free_percent / 100,
        ),
        (
            "camfleet_disk_unoffloaded_bytes",
            "Bytes of finished recordings with no confirmed copy elsewhere",
            d.unoffloaded_bytes,
        ),
        (
            "camfleet_disk_unoffloaded_recordings",
            "Finished recordings with no confirmed copy elsewhere",
            d.unoffloaded_count,
        ),
        (
            "camfleet_disk_offloaded_bytes",
            "Bytes of offloaded recordings (retention may delete them)",
            d.offloaded_bytes,
        ),
        (
            "camfleet_disk_alarm",
            "1 when the disk is full of footage not yet offloaded (recording stopped or starts "
            "refused; nothing deleted)",
            1 if d.alarm else 0,
        ),
    ]
    for name, text, value in gauges:
        g = GaugeMetricFamily(name, text, labels=labels)
        g.add_metric(ids, value)
        yield g
    age = GaugeMetricFamily(
        "camfleet_disk_oldest_unoffloaded_age_seconds",
        "Age of the oldest recording not yet offloaded (0 when none is waiting)",
        labels=labels,
    )
    age.add_metric(ids, d.oldest_unoffloaded_age_s or 0.0)
    yield age
    level = GaugeMetricFamily(
        "camfleet_disk_level",
        "1 for the disk's level: ok, warn (offload soon) or critical (starts refused)",
        labels=[*labels, "level"],
    )
    for lv in DiskLevel:
        level.add_metric([*ids, lv.value], 1 if d.level == lv else 0)
    yield level
    deleted = CounterMetricFamily(
        "camfleet_retention_deleted_bytes",
        "Bytes of offloaded footage deleted by retention and deletes since the agent started",
        labels=labels,
    )
    deleted.add_metric(ids, d.deleted_bytes_total)
    yield deleted
