"""Provider ``command``: any program that prints one JSON object, like the seed's
``battery-info.sh``.

Keys read (others are ignored): ``battery_percent`` (0-100), ``battery_voltage`` (volts),
and the AC state from the first of ``on_ac``, ``ac_power``, ``ac_present``,
``external_power`` (true/false, 1/0, "yes"/"no"). The seed's script derives its keys from
``lifepo4wered-cli get``; a script that prints only ``VIN`` in millivolts can be read
with ``vin_mv`` and ``vin_threshold_mv`` (AC when VIN is above it).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from node_agent.commands import CommandRunner
from node_agent.power.provider import failed
from node_agent.power.schemas import PowerReading

AC_KEYS = ("on_ac", "ac_power", "ac_present", "external_power")
TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}


class ReadingError(ValueError):
    """The program's output is not a battery reading; the message says what is wrong."""


def _number(obj: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ReadingError(f"{key} is {value!r}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise ReadingError(f"{key} is {value!r}, not a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ReadingError(f"{key} is {number:g}, outside {low:g}..{high:g}")
    return number


def _flag(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise ReadingError(f"{key} is {value!r}, not true/false")


def parse_reading(text: str, provider: str = "command") -> PowerReading:
    """The reading in one JSON object; ReadingError saying what is wrong otherwise."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as err:
        raise ReadingError(f"not JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(obj, dict):
        raise ReadingError(f"printed a JSON {type(obj).__name__}, not one object")
    percent = _number(obj, "battery_percent", 0, 100)
    voltage = _number(obj, "battery_voltage", 0, 100)
    on_ac: bool | None = None
    for key in AC_KEYS:
        if key in obj:
            on_ac = _flag(obj[key], key)
            break
    else:
        vin = _number(obj, "vin_mv", 0, 100_000)
        threshold = _number(obj, "vin_threshold_mv", 0, 100_000)
        if vin is not None and threshold is not None:
            on_ac = vin > threshold
    charging = _flag(obj["charging"], "charging") if "charging" in obj else None
    if percent is None and on_ac is None:
        raise ReadingError(
            "has neither battery_percent nor an AC state (on_ac, ac_power, ac_present, "
            "external_power)"
        )
    return PowerReading(
        provider=provider,
        ok=True,
        percent=percent,
        voltage_v=voltage,
        on_ac=on_ac,
        charging=charging,
        read_at_ns=time.time_ns(),
    )


class CommandProvider:
    """Runs ``argv`` and reads the JSON object it prints."""

    name = "command"

    def __init__(self, argv: list[str], runner: CommandRunner, timeout_s: float) -> None:
        self.argv = argv
        self.runner = runner
        self.timeout_s = timeout_s

    def read(self) -> PowerReading:
        """Run the program now; a failure or bad output is a failed reading."""
        done = self.runner.run(self.argv, timeout_s=self.timeout_s, mutates=False)
        if not done.ok:
            return failed(self.name, done.describe())
        try:
            return parse_reading(done.stdout, self.name)
        except ReadingError as err:
            return failed(self.name, f"{self.argv[0]} output {err}")
