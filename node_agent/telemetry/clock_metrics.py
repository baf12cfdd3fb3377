"""The clock's part of the agent's ``/metrics``: the ``camfleet_clock_*`` family."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from node_agent.schemas import ClockStatus


def _seconds(ns: int | None) -> float | None:
    return None if ns is None else ns / 1e9


def clock_metrics(c: ClockStatus, labels: list[str], ids: list[str]) -> Iterator[Metric]:
    """One gauge per figure chrony gave (a figure it did not give is left out)."""
    synced = 1 if c.synchronized else 0
    follows = None if c.follows_master is None else (1 if c.follows_master else 0)
    reachable = sum(1 for s in c.sources if s.reach != 0)
    gauges: list[tuple[str, str, float | None]] = [
        ("camfleet_clock_synchronized", "1 when the clock is synchronised", synced),
        (
            "camfleet_clock_offset_seconds",
            "Local clock minus reference time (positive: ahead)",
            _seconds(c.offset_ns),
        ),
        (
            "camfleet_clock_error_bound_seconds",
            "|offset| + root dispersion + root delay / 2",
            _seconds(c.error_bound_ns),
        ),
        (
            "camfleet_clock_rms_offset_seconds",
            "Long-term average offset (RMS)",
            _seconds(c.rms_offset_ns),
        ),
        ("camfleet_clock_frequency_ppm", "The clock's frequency error", c.frequency_ppm),
        ("camfleet_clock_skew_ppm", "Error bound on the frequency", c.skew_ppm),
        (
            "camfleet_clock_root_delay_seconds",
            "Round trip to the stratum-1 reference",
            _seconds(c.root_delay_ns),
        ),
        (
            "camfleet_clock_root_dispersion_seconds",
            "Dispersion accumulated up to the reference",
            _seconds(c.root_dispersion_ns),
        ),
        (
            "camfleet_clock_stratum",
            "chrony's stratum",
            None if c.stratum is None else float(c.stratum),
        ),
        (
            "camfleet_clock_last_update_age_seconds",
            "Seconds since chrony last updated the clock from its reference",
            c.last_update_age_s,
        ),
        (
            "camfleet_clock_sources_reachable",
            "Sources that answered at least one of the last eight polls",
            reachable if c.source == "chrony" else None,
        ),
        ("camfleet_clock_follows_master", "1 when a client follows its master", follows),
    ]
    for name, text, value in gauges:
        if value is None:
            continue
        g = GaugeMetricFamily(name, text, labels=labels)
        g.add_metric(ids, value)
        yield g
