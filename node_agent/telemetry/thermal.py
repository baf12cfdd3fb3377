"""Thermal telemetry: the CPU temperature from a sysfs thermal zone (what the gates use)."""

from __future__ import annotations

from pathlib import Path

from node_agent.telemetry.reading import Reading


def parse_millidegrees(text: str) -> float:
    """A sysfs thermal zone's text (millidegrees Celsius) in degrees; ValueError if not one."""
    return int(text.strip()) / 1000


def read_thermal(path: Path) -> Reading[float]:
    """The temperature at ``path`` in °C, or why it could not be read (no sensor)."""
    try:
        return Reading("thermal", parse_millidegrees(path.read_text()))
    except (OSError, ValueError) as err:
        return Reading("thermal", None, f"{path}: {err}")


def read_temperature_c(path: Path) -> float | None:
    """The temperature at ``path`` in °C; None when there is no sensor."""
    return read_thermal(path).value
