"""The power part of the agent's ``/metrics``: battery, AC, level and the reading's age."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from node_agent.power.schemas import PowerLevel, PowerStatus


def power_metrics(p: PowerStatus | None, labels: list[str], ids: list[str]) -> Iterator[Metric]:
    """Gauges of one PowerStatus; a value the provider did not give is left out."""
    if p is None:
        return
    r = p.reading if p.reading is not None and p.reading.ok else None
    on_ac = True if p.level in (PowerLevel.mains, PowerLevel.ac) else (r.on_ac if r else None)
    values: list[tuple[str, str, float | None]] = [
        (
            "camfleet_power_battery_percent",
            "Battery state of charge (0-100)",
            r.percent if r else None,
        ),
        (
            "camfleet_power_battery_voltage_volts",
            "Battery voltage",
            r.voltage_v if r else None,
        ),
        ("camfleet_power_on_ac", "1 on AC (or mains) power: thresholds ignored", on_ac),
        (
            "camfleet_power_reading_age_seconds",
            "Seconds since the battery provider last answered",
            p.age_s,
        ),
    ]
    for name, text, value in values:
        if value is None:
            continue
        g = GaugeMetricFamily(name, text, labels=labels)
        g.add_metric(ids, float(value))
        yield g
    level = GaugeMetricFamily(
        "camfleet_power_level",
        "1 for the power level: mains, unknown, ac, ok, warn, low (starts refused), "
        "disconnect (recording stopped), shutdown",
        labels=[*labels, "level"],
    )
    for lv in PowerLevel:
        level.add_metric([*ids, lv.value], 1 if p.level == lv else 0)
    yield level
