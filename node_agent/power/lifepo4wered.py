"""Provider ``lifepo4wered``: the LiFePO4wered/Pi UPS HAT, through ``lifepo4wered-cli get``.

The CLI prints one ``NAME = value`` line per register; voltages are millivolts. The HAT
reports no state of charge, so the percentage is read off ``VBAT`` with the discharge
curve of a LiFePO4 cell at rest (``CURVE``: flat between 3.2 and 3.3 V, steep at both
ends); AC is ``VIN`` above ``VIN_THRESHOLD`` (the HAT's own register; 4500 mV when the
CLI does not print it).
"""

from __future__ import annotations

import itertools
import time

from node_agent.commands import CommandRunner
from node_agent.power.provider import failed
from node_agent.power.schemas import PowerReading

# (millivolts, percent) of one LiFePO4 cell, interpolated linearly between points.
CURVE: tuple[tuple[float, float], ...] = (
    (2850, 0),
    (3000, 5),
    (3150, 12),
    (3200, 20),
    (3250, 40),
    (3300, 70),
    (3330, 90),
    (3400, 100),
)
DEFAULT_VIN_THRESHOLD_MV = 4500


class OutputError(ValueError):
    """The CLI's output is not what ``lifepo4wered-cli get`` prints."""


def parse_registers(text: str) -> dict[str, int]:
    """``{'VBAT': 3291, ...}`` from ``NAME = value`` lines; lines of other shapes are skipped."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        try:
            values[name.strip().upper()] = int(value.strip(), 0)
        except ValueError:
            continue
    return values


def percent_from_mv(vbat_mv: float) -> float:
    """The state of charge of a LiFePO4 cell at ``vbat_mv`` (see ``CURVE``)."""
    if vbat_mv <= CURVE[0][0]:
        return 0.0
    for (v0, p0), (v1, p1) in itertools.pairwise(CURVE):
        if vbat_mv <= v1:
            return p0 + (p1 - p0) * (vbat_mv - v0) / (v1 - v0)
    return 100.0


def reading_from_registers(values: dict[str, int]) -> PowerReading:
    """The reading in the CLI's registers; OutputError when VBAT is missing or absurd."""
    vbat = values.get("VBAT")
    if vbat is None:
        raise OutputError("no VBAT line (is this lifepo4wered-cli get?)")
    if not 0 <= vbat <= 10_000:
        raise OutputError(f"VBAT = {vbat} mV is not a cell's voltage")
    vin = values.get("VIN")
    threshold = values.get("VIN_THRESHOLD", DEFAULT_VIN_THRESHOLD_MV)
    return PowerReading(
        provider="lifepo4wered",
        ok=True,
        percent=round(percent_from_mv(vbat), 1),
        voltage_v=vbat / 1000,
        on_ac=None if vin is None else vin > threshold,
        read_at_ns=time.time_ns(),
    )


class Lifepo4weredProvider:
    """Runs ``lifepo4wered-cli get`` and reads VBAT and VIN."""

    name = "lifepo4wered"

    def __init__(self, cli: str, runner: CommandRunner, timeout_s: float) -> None:
        self.cli = cli
        self.runner = runner
        self.timeout_s = timeout_s

    def read(self) -> PowerReading:
        """One reading now; a failing CLI or odd output is a failed reading."""
        done = self.runner.run([self.cli, "get"], timeout_s=self.timeout_s, mutates=False)
        if not done.ok:
            return failed(self.name, done.describe())
        try:
            return reading_from_registers(parse_registers(done.stdout))
        except OutputError as err:
            return failed(self.name, f"{self.cli} get: {err}")
